#!/usr/bin/env bash
# Run a shell script inside a small virtual machine that boots Debian's own kernel, for the tests that need what
# the kernel of the machine running them may lack (kernel TLS).
#
#   tests/vm/vm-run.sh [--kernel-cache DIR] [--bin HOST_PATH]... [--file HOST_PATH:GUEST_PATH]...
#                      [--module NAME]... [--timeout SECONDS] [--mem MB] [--smp N] [--pid-file FILE]
#                      -- GUEST_SCRIPT [ARGS...]
#
#   --kernel-cache DIR   where tests/vm/vm-kernel.sh keeps the kernel (default: its own default,
#                        ${RM_BUILD_DIR:-<repo>/build}/deps/vm-kernel); it is fetched there first when missing.
#   --bin HOST_PATH      an executable copied to the same absolute path in the guest, with every shared library
#                        `ldd` lists for it (the dynamic loader included), so host-built programs run unchanged.
#                        Its directory is put first on the guest's PATH. Libraries a program dlopen()s are not
#                        in ldd's list: pass them with --file.
#   --file HOST:GUEST    a file, or a directory copied recursively, placed at the absolute path GUEST.
#   --module NAME        a module (or module alias) of the guest kernel to load, e.g. nf_tables or veth, after its
#                        dependencies and soft dependencies, as modprobe would; tls is always loaded.
#   --timeout SECONDS    how long the VM may run, from qemu's start (default 240); then qemu is killed.
#   --mem MB, --smp N    the guest's memory (default 512) and CPUs (default 2).
#   --pid-file FILE      qemu's PID is written there (it is also printed on stderr).
#   GUEST_SCRIPT ARGS    a host file, run in the guest by busybox's sh with ARGS as its positional parameters, cwd
#                        /tmp, stdin /dev/null and VM=1, RM_VM_KERNEL=<uname -r> in its environment.
#
# Debian's busybox sh runs its own applet for a command name that is one (setpriv, ip, nc, ...) whatever PATH says.
# So that a --bin program of such a name is the one a guest script runs, the script is sourced (`.`) by a wrapper
# that first defines a shell function of that name running the program; $0 is then the wrapper's name. Applets that
# run other commands (env, timeout, xargs, setsid, ...) still pick the applet: give them the program's full path.
#
# Exit status: the guest script's, or 125 when the VM reported none (boot failure, kernel panic, a failed module
# load, timeout), with the reason on stderr; 2 for bad usage.
#
# The guest console (its serial port: kernel messages, the script's stdout and stderr) is streamed to stdout without
# carriage returns and terminal control sequences; vm-run.sh's own messages go to stderr. The guest's /init ends with
# the line "RM_VM_EXIT=<status> run=<nonce>" and powers off; the nonce is new for every run, so nothing the script
# prints is taken for that line. A failed setup in the guest prints "RM_VM_SETUP_FAILED run=<nonce>: <why>" instead.
#
# The guest: qemu under TCG software emulation (-cpu max: AES-NI, AVX2 and the other extensions TCG emulates; KVM is
# never used, nested virtualisation is not dependable), with no default devices (-nodefaults: the serial port is the
# console, there is no display) and no network device at all (-nic none): the guest has lo only, brought up.
# The root file system is the initramfs, made in a temporary directory from busybox (busybox-static), the --bin and
# --file files, the modules and an /init that mounts proc, sysfs, devtmpfs, devpts and tmpfs on /tmp, /run and
# /dev/shm (what the initramfs held under /tmp and /run is copied into them), brings lo up, loads the modules, checks
# that tcp_available_ulp lists tls, sets the hostname ringmesh-vm, and runs the script. /etc/passwd and /etc/group
# know root and ringmesh (UID/GID 1337, the proxy's user in the tests).
#
# qemu is started by this script and stopped by its PID only (TERM, then KILL after 5 s) when the timeout passes, when
# it has not exited 20 s after the guest reported, or when this script is interrupted. The temporary directory is
# removed on exit. A boot takes about 6-10 s on a machine without nested virtualisation.
#
# Needs: qemu-system-x86 (qemu-system-x86_64), busybox-static, cpio, gzip, ldd (libc-bin), and what
# tests/vm/vm-kernel.sh needs (scripts/bootstrap.sh installs them all). Root is not needed once the kernel is cached.
set -euo pipefail
shopt -s extglob

readonly GUEST_HOSTNAME=ringmesh-vm
readonly GRACE_AFTER_EXIT=20

log() { printf 'vm-run: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 125
}
usage() {
    log "usage: $0 [--kernel-cache DIR] [--bin HOST_PATH]... [--file HOST_PATH:GUEST_PATH]... [--module NAME]..."
    log "       [--timeout SECONDS] [--mem MB] [--smp N] [--pid-file FILE] -- GUEST_SCRIPT [ARGS...]"
    [[ -z ${1:-} ]] || log "error: $1"
    exit 2
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

kernel_cache=""
bins=()
files=()
modules=(tls)
timeout=240
mem=512
smp=2
pid_file=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --kernel-cache | --bin | --file | --module | --timeout | --mem | --smp | --pid-file)
        [[ $# -ge 2 ]] || usage "$1 needs a value"
        case $1 in
        --kernel-cache) kernel_cache=$2 ;;
        --bin) bins+=("$2") ;;
        --file) files+=("$2") ;;
        --module) modules+=("$2") ;;
        --timeout) timeout=$2 ;;
        --mem) mem=$2 ;;
        --smp) smp=$2 ;;
        --pid-file) pid_file=$2 ;;
        esac
        shift 2
        ;;
    --)
        shift
        break
        ;;
    *) usage "unknown argument '$1' (the guest script comes after --)" ;;
    esac
done
[[ $# -ge 1 ]] || usage "no guest script"
script=$1
shift
[[ -f $script && -r $script ]] || usage "guest script '$script' is not a readable file"
[[ $timeout =~ ^[1-9][0-9]*$ ]] || usage "--timeout wants a positive number of seconds, not '$timeout'"
if ! [[ $mem =~ ^[1-9][0-9]*$ ]] || ((mem < 128)); then
    usage "--mem wants at least 128 (MB), not '$mem'"
fi
[[ $smp =~ ^[1-9][0-9]?$ ]] || usage "--smp wants a number of CPUs, not '$smp'"

for cmd in qemu-system-x86_64:qemu-system-x86 busybox:busybox-static cpio:cpio gzip:gzip ldd:libc-bin; do
    command -v "${cmd%%:*}" >/dev/null 2>&1 ||
        die "'${cmd%%:*}' is not installed (install the Debian package ${cmd#*:}; scripts/bootstrap.sh does)"
done

cache=$(bash "$here/vm-kernel.sh" ${kernel_cache:+"$kernel_cache"}) ||
    die "tests/vm/vm-kernel.sh could not provide a kernel"
kernel=$(sed -n 's/^kernel=//p' "$cache/vm-kernel.stamp")
[[ -n $kernel && -f $cache/vmlinuz && -f $cache/modules/modules.dep ]] || die "incomplete kernel cache in $cache"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rm-vm.XXXXXX")
root=$tmp/root
qemu_pid=""

# stop_qemu: TERM, 5 s, KILL, by PID; reaps it. Sets qemu_status.
qemu_status=""
stop_qemu() {
    local i
    [[ -n $qemu_pid ]] || return 0
    if kill -0 "$qemu_pid" 2>/dev/null; then
        kill -TERM "$qemu_pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$qemu_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$qemu_pid" 2>/dev/null && kill -KILL "$qemu_pid" 2>/dev/null
    fi
    qemu_status=0
    wait "$qemu_pid" 2>/dev/null || qemu_status=$?
    qemu_pid=""
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM HUP
    stop_qemu
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---------------------------------------------------------------------------------------------------------------
# the initramfs

# guest_path PATH: PATH as an absolute, normalised guest path (symbolic links are not resolved); refuses the places
# the guest mounts over.
guest_path() {
    local p=$1
    [[ $p == /* ]] || p=$PWD/$p
    p=$(realpath -s -m -- "$p")
    case $p in
    / | /proc | /proc/* | /sys | /sys/* | /dev | /dev/* | /init | /rm-vm | /rm-vm/*)
        die "cannot place '$1' at $p in the guest (the guest's /init owns that path)"
        ;;
    esac
    printf '%s' "$p"
}

# put SRC DST: copies the file SRC (symbolic links followed) to the guest path DST, keeping its mode; the first copy
# wins.
put() {
    local dst=$root$2
    [[ -e $dst ]] && return 0
    mkdir -p "${dst%/*}"
    cp -L --preserve=mode,timestamps -- "$1" "$dst"
}

# put_elf HOST_PATH GUEST_PATH: an executable and the shared libraries ldd lists for it, at their host paths
put_elf() {
    local src=$1 dst=$2 out line lib
    [[ -f $src && -x $src ]] || die "--bin $src: not an executable file"
    put "$src" "$dst"
    if ! out=$(LC_ALL=C ldd -- "$src" 2>&1); then
        [[ $out == *"not a dynamic executable"* ]] && return 0
        die "ldd $src failed: $out"
    fi
    while IFS= read -r line; do
        case $line in
        *"=> not found"*) die "$src needs ${line%% =>*}, which this machine does not have" ;;
        *"=> /"*)
            lib=${line#*=> }
            lib=${lib%% (*}
            ;;
        *([[:space:]])/*)
            lib=${line##*([[:space:]])}
            lib=${lib%% (*}
            ;;
        *) continue ;; # linux-vdso.so.1, "statically linked"
        esac
        [[ -f $lib ]] || die "ldd names $lib for $src, and it is not a file"
        put "$lib" "$lib"
    done <<<"$out"
}

# put_tree HOST GUEST: a file or a directory (recursively, symbolic links followed)
put_tree() {
    local src=$1 dst=$root$2
    [[ -e $src ]] || die "--file $src: no such file or directory"
    if [[ -d $src ]]; then
        mkdir -p "$dst"
        cp -R -L --preserve=mode,timestamps -- "$src/." "$dst/"
    else
        mkdir -p "${dst%/*}"
        cp -L --preserve=mode,timestamps -- "$src" "$dst"
    fi
}

# sh_quote WORD: WORD in single quotes for the guest's sh
sh_quote() {
    local q="'\\''"
    printf "'%s'" "${1//\'/$q}"
}

mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,rm-vm}
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"

busybox_bin=$(command -v busybox)
put_elf "$busybox_bin" /bin/busybox

# The guest's /etc (a --file may replace any of these).
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
ringmesh:x:1337:1337:ringmesh proxy:/tmp:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
ringmesh:x:1337:
nogroup:x:65534:
EOF
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files\nservices: files\nprotocols: files\n' \
    >"$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost %s\n::1 localhost ip6-localhost ip6-loopback\n' "$GUEST_HOSTNAME" >"$root/etc/hosts"
printf '%s\n' "$GUEST_HOSTNAME" >"$root/etc/hostname"
[[ ! -r /etc/services ]] || cp /etc/services "$root/etc/services"
[[ ! -r /etc/protocols ]] || cp /etc/protocols "$root/etc/protocols"

path_dirs=()
for b in "${bins[@]}"; do
    g=$(guest_path "$b")
    put_elf "$b" "$g"
    d=${g%/*}
    [[ " ${path_dirs[*]} " == *" ${d:-/} "* ]] || path_dirs+=("${d:-/}")
done
guest_path_var=""
for d in "${path_dirs[@]}"; do
    guest_path_var+="$d:"
done
guest_path_var+=/bin:/sbin:/usr/bin:/usr/sbin

for f in "${files[@]}"; do
    [[ $f == *:/* ]] || die "--file wants HOST_PATH:GUEST_PATH with an absolute GUEST_PATH, not '$f'"
    g=$(guest_path "${f##*:}")
    put_tree "${f%:*}" "$g"
done

# Modules: NAME -> its path in modules.dep ("-" and "_" are the same in module names), loaded after what it needs.
declare -A mod_path=() mod_deps=() mod_done=()
while IFS= read -r line; do
    path=${line%%:*}
    name=${path##*/}
    name=${name%%.ko*}
    mod_path[${name//-/_}]=$path
    mod_deps[$path]=${line#*:}
done <"$cache/modules/modules.dep"
declare -A mod_alias=()
while read -r word alias target; do
    [[ $word == alias && -z ${mod_alias[$alias]:-} ]] && mod_alias[$alias]=${target//-/_}
done <"$cache/modules/modules.alias"
# module_file NAME: the modules.dep path of module or alias NAME (nothing when the kernel has it built in, or when
# it is outside the subtrees vm-kernel.sh keeps)
module_file() {
    local name=${1%%.ko*}
    name=${name##*/}
    name=${name//-/_}
    if [[ -n ${mod_path[$name]:-} ]]; then
        printf '%s' "${mod_path[$name]}"
    elif [[ -n ${mod_alias[$1]:-} && -n ${mod_path[${mod_alias[$1]}]:-} ]]; then
        printf '%s' "${mod_path[${mod_alias[$1]}]}"
    fi
}
# add_module_path PATH: PATH after its dependencies (modules.dep) and its "softdep=pre:" modules (libcrc32c needs
# crc32c, which it asks the crypto API for at load time), before its "post:" ones; modprobe does the same.
mod_order=()
add_module_path() {
    local path=$1 dep
    [[ -z ${mod_done[$path]:-} ]] || return 0
    mod_done[$path]=1
    add_softdeps "$path" pre
    for dep in ${mod_deps[$path]}; do
        add_module_path "$dep"
    done
    mod_order+=("$path")
    add_softdeps "$path" post
}
# add_softdeps PATH pre|post: the soft dependencies of that kind the module declares in its .modinfo section
add_softdeps() {
    local softdep word when="" file
    softdep=$(LC_ALL=C grep -a -o 'softdep=[^[:cntrl:]]*' "$cache/modules/$1" | head -n 1) || true
    for word in ${softdep#softdep=}; do
        case $word in
        pre: | post:) when=${word%:} ;;
        *)
            [[ $when == "$2" ]] || continue
            file=$(module_file "$word")
            [[ -z $file ]] || add_module_path "$file"
            ;;
        esac
    done
}
for m in "${modules[@]}"; do
    file=$(module_file "$m")
    [[ -n $file ]] ||
        die "the guest kernel has no module '$m' in $cache/modules (built in? outside the subtrees vm-kernel.sh keeps?)"
    add_module_path "$file"
done
: >"$root/rm-vm/modules"
for path in "${mod_order[@]}"; do
    src=$cache/modules/$path
    dst=/lib/modules/$kernel/${path%.@(xz|zst|gz)}
    mkdir -p "$root${dst%/*}"
    case $path in
    *.ko) cp -- "$src" "$root$dst" ;;
    *.ko.xz) xz -dc -- "$src" >"$root$dst" ;;
    *.ko.zst) zstd -qdc -- "$src" >"$root$dst" ;;
    *.ko.gz) gzip -dc -- "$src" >"$root$dst" ;;
    *) die "unknown module format: $path" ;;
    esac
    printf '%s\n' "$dst" >>"$root/rm-vm/modules"
done

# The guest script is sourced by /rm-vm/run, after the positional parameters are set and, for every --bin program
# whose name is also a busybox applet, a function that runs the program: Debian's busybox sh runs its own applet for
# such a name whatever PATH says.
cp -- "$script" "$root/rm-vm/script"
applets=$("$busybox_bin" --list)
{
    printf '# Made by tests/vm/vm-run.sh.\n'
    for b in "${bins[@]}"; do
        g=$(guest_path "$b")
        name=${g##*/}
        if grep -qxF -- "$name" <<<"$applets" && [[ $name =~ ^[A-Za-z_][A-Za-z0-9_.-]*$ ]]; then
            printf '%s() { %s "$@"; }\n' "$name" "$(sh_quote "$g")"
        fi
    done
    printf 'set --'
    for a in "$@"; do
        printf ' %s' "$(sh_quote "$a")"
    done
    printf '\n. /rm-vm/script\n'
} >"$root/rm-vm/run"

nonce=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
exit_marker="RM_VM_EXIT=%s run=$nonce"
fail_marker="RM_VM_SETUP_FAILED run=$nonce:"

# The guest's /init (busybox sh, PID 1: it must never exit, or the kernel panics).
cat >"$root/init" <<EOF
#!/bin/busybox sh
# Made by tests/vm/vm-run.sh.
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
export PATH=$(sh_quote "$guest_path_var") HOME=/root
setup_failed() {
    printf '\\n%s %s\\n' $(sh_quote "$fail_marker") "\$*"
    poweroff -f
    while :; do sleep 60; done
}
mount -t proc proc /proc || setup_failed "cannot mount /proc"
mount -t sysfs sysfs /sys || setup_failed "cannot mount /sys"
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts || setup_failed "cannot mount /dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm || setup_failed "cannot mount /dev/shm"
# /tmp and /run become tmpfs; what the initramfs put there is copied in.
for d in tmp run; do
    if [ -n "\$(ls -A /\$d)" ]; then
        mv /\$d /.seed-\$d && mkdir /\$d || setup_failed "cannot move /\$d aside"
    else
        mkdir -p /\$d
    fi
    mount -t tmpfs -o nosuid,nodev tmpfs /\$d || setup_failed "cannot mount /\$d"
    if [ -d /.seed-\$d ]; then
        cp -a /.seed-\$d/. /\$d/ && rm -rf /.seed-\$d || setup_failed "cannot fill /\$d"
    fi
done
chmod 1777 /tmp
chmod 0755 /run
hostname -F /etc/hostname || setup_failed "cannot set the hostname"
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up || setup_failed "cannot bring lo up"
while read -r m; do
    [ -n "\$m" ] || continue
    insmod "\$m" || setup_failed "insmod \$m failed"
done </rm-vm/modules
grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp ||
    setup_failed "tcp_available_ulp does not list tls after insmod: \$(cat /proc/sys/net/ipv4/tcp_available_ulp)"
cd /tmp || setup_failed "no /tmp"
export VM=1 RM_VM_KERNEL=\$(uname -r)
sh /rm-vm/run </dev/null
status=\$?
sync
printf '\\n$exit_marker\\n' "\$status"
poweroff -f
while :; do sleep 60; done
EOF
chmod 0755 "$root/init"
if [[ $(id -u) == 0 ]]; then
    mknod -m 0600 "$root/dev/console" c 5 1 # so that the kernel gives /init a console before /dev is mounted
fi

(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) | gzip -1 >"$tmp/initrd.gz"
log "kernel $kernel, initramfs $(($(stat -c %s "$tmp/initrd.gz") / 1024)) KiB, modules: ${modules[*]}"

# ---------------------------------------------------------------------------------------------------------------
# the VM

console=$tmp/console
mkfifo "$console"
qemu_args=(
    -accel tcg -cpu max -m "$mem" -smp "$smp"
    -nodefaults -no-user-config -display none -serial stdio -monitor none -no-reboot -nic none
    -kernel "$cache/vmlinuz" -initrd "$tmp/initrd.gz"
    -append "console=ttyS0 quiet panic=-1 rdinit=/init"
)
start=$SECONDS
qemu-system-x86_64 "${qemu_args[@]}" </dev/null >"$console" 2>"$tmp/qemu.stderr" &
qemu_pid=$!
started_pid=$qemu_pid
log "qemu PID $qemu_pid (timeout ${timeout} s)"
[[ -z $pid_file ]] || printf '%s\n' "$qemu_pid" >"$pid_file"

# console_line RAW: prints a console line without carriage return and terminal control sequences, and notes the
# markers. A terminal reset (ESC c) starts a new line. (With a VGA device, the firmware mirrors its screen to the
# serial port, out of order with what the guest writes there, resets included: -nodefaults leaves qemu without one.)
console_line() {
    local raw=${1%$'\r'} part
    local parts=("$raw")
    [[ $raw != *$'\e'c* ]] || mapfile -t parts <<<"${raw//$'\e'c/$'\n'}"
    for part in "${parts[@]}"; do
        part=${part//$'\e'\[*([0-9;?])[A-Za-z]/}
        part=${part//$'\e'[[:alpha:]]/}
        [[ -n $part || ${#parts[@]} == 1 ]] || continue
        printf '%s\n' "$part"
        if [[ $part =~ $exit_re ]]; then
            guest_status=${BASH_REMATCH[1]}
            ((deadline <= SECONDS + GRACE_AFTER_EXIT)) || deadline=$((SECONDS + GRACE_AFTER_EXIT))
        elif [[ $part == "$fail_marker"* ]]; then
            setup_error=${part#"$fail_marker"}
        elif [[ $part == *"Kernel panic"* ]]; then
            panic=$part
        fi
    done
}

# Reads the console until qemu closes it or the deadline passes; after the guest reported, waits at most
# GRACE_AFTER_EXIT more seconds for the power-off.
guest_status=""
setup_error=""
panic=""
timed_out=""
deadline=$((start + timeout))
exit_re="^RM_VM_EXIT=([0-9]+) run=$nonce\$"
while :; do
    left=$((deadline - SECONDS))
    if ((left <= 0)); then
        [[ -n $guest_status ]] || timed_out=1
        break
    fi
    line=""
    if IFS= read -r -t "$left" line; then
        eof=""
    else
        (($? > 128)) && eof=timeout || eof=1
        [[ -n $line ]] || { [[ $eof == timeout ]] && continue; break; }
    fi
    console_line "$line"
    [[ $eof != 1 ]] || break
done <"$console"

if [[ -z $timed_out ]]; then
    # qemu closed the console (or the grace period after the guest's report passed): it is exiting, give it 5 s
    for ((i = 0; i < 50; i++)); do
        kill -0 "$qemu_pid" 2>/dev/null || break
        sleep 0.1
    done
fi
stop_qemu
elapsed=$((SECONDS - start))

if [[ -n $guest_status ]]; then
    log "guest script exited with status $guest_status (VM ran ${elapsed} s)"
    exit "$guest_status"
fi
if [[ -n $setup_error ]]; then
    log "error: the guest's setup failed:$setup_error"
elif [[ -n $timed_out ]]; then
    log "error: the guest reported no status within ${timeout} s; qemu (PID $started_pid) was killed"
elif [[ -n $panic ]]; then
    log "error: the guest kernel panicked: ${panic##*([[:space:]])}"
else
    log "error: qemu exited (status $qemu_status) after ${elapsed} s without a status from the guest (boot failure?)"
fi
if [[ -s $tmp/qemu.stderr ]]; then
    log "qemu's stderr:"
    sed 's/^/    /' "$tmp/qemu.stderr" >&2
fi
exit 125
