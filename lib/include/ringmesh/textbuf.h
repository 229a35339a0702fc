/* Appending formatted text to a fixed buffer, for /metrics and /config_dump pages built in one pass. */
#ifndef RINGMESH_TEXTBUF_H
#define RINGMESH_TEXTBUF_H

#include <stddef.h>

/** Formats at buf[o..len) and returns the new offset. Output that does not fit is cut, and the offset stops at
 *  len, so a caller can append without checking and compare the final offset with len to see the page was cut. */
size_t rm_textf(char *buf, size_t len, size_t o, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
