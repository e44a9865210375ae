/*
 * server/log.h — one line per event on stderr (journald keeps the time too):
 * "2024-05-01T12:00:00.123Z info job 7: started". Thread-safe: each line is
 * written with a single write(2).
 */
#ifndef ISIFD_LOG_H
#define ISIFD_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Lines below this level are dropped (default LOG_INFO). */
void log_set_level(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* Current UTC time as ISO 8601 with seconds ("2024-05-01T12:00:00Z") into
 * buf (at least 24 bytes). */
void iso8601_now(char *buf, unsigned len);

#endif
