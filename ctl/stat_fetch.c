/* HTTP GETs for ringmeshctl stat, with libcurl: a proxy's /metrics and Prometheus' query API. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stat.h"

#define MAX_BODY (64u << 20)

typedef struct st_fetch_t {
    rm_stat_body_t *out;
    int too_large;
    const volatile int *stop;
} fetch_t;

static size_t on_data(char *data, size_t size, size_t nmemb, void *ctx)
{
    fetch_t *f = ctx;
    size_t n = size * nmemb;
    char *grown;

    if (f->out->len + n > MAX_BODY) {
        f->too_large = 1;
        return 0; /* aborts the transfer */
    }
    if ((grown = realloc(f->out->data, f->out->len + n + 1)) == NULL)
        return 0;
    f->out->data = grown;
    memcpy(f->out->data + f->out->len, data, n);
    f->out->len += n;
    f->out->data[f->out->len] = '\0';
    return n;
}

/* Ctrl-C ends a transfer at once instead of after its timeout. */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    const fetch_t *f = ctx;

    return f->stop != NULL && *f->stop;
}

int rm_stat_get(const char *url, const char *accept, const volatile int *stop, rm_stat_body_t *out, char *err,
                size_t errlen)
{
    static int initialized;
    char curl_err[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL;
    fetch_t f = {.out = out, .stop = stop};
    CURL *curl = NULL;
    CURLcode rc;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    if (!initialized) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
            snprintf(err, errlen, "libcurl could not start");
            goto Exit;
        }
        initialized = 1;
    }
    if ((curl = curl_easy_init()) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto Exit;
    }
    if (accept != NULL) {
        char h[256];
        snprintf(h, sizeof(h), "Accept: %s", accept);
        if ((headers = curl_slist_append(NULL, h)) == NULL) {
            snprintf(err, errlen, "out of memory");
            goto Exit;
        }
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "ringmeshctl-stat");
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &f);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &f);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    if ((rc = curl_easy_perform(curl)) != CURLE_OK) {
        if (f.too_large)
            snprintf(err, errlen, "the answer is larger than %u MiB", MAX_BODY >> 20);
        else if (rc == CURLE_ABORTED_BY_CALLBACK)
            snprintf(err, errlen, "interrupted");
        else
            snprintf(err, errlen, "%s", curl_err[0] != '\0' ? curl_err : curl_easy_strerror(rc));
        goto Exit;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
    if (out->data == NULL && (out->data = calloc(1, 1)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto Exit;
    }
    ret = 0;

Exit:
    if (ret != 0)
        rm_stat_body_free(out);
    curl_slist_free_all(headers);
    if (curl != NULL)
        curl_easy_cleanup(curl);
    return ret;
}

void rm_stat_body_free(rm_stat_body_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}
