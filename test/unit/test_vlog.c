/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Log lines: to stderr, one line each, with the program name, the level and
 * the tag (the device or queue the line is about); nothing below the
 * threshold.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vhost-user/vlog.h"

struct capture {
	int saved_fd;
	FILE *f;
};

/* Send stderr to a temporary file. */
static void capture_begin(struct capture *c)
{
	fflush(stderr);
	c->f = tmpfile();
	assert_non_null(c->f);
	c->saved_fd = dup(STDERR_FILENO);
	assert_true(c->saved_fd >= 0);
	assert_int_equal(dup2(fileno(c->f), STDERR_FILENO), STDERR_FILENO);
}

/* Restore stderr and return what was written (caller frees). */
static char *capture_end(struct capture *c)
{
	char *buf;
	long len;

	fflush(stderr);
	assert_int_equal(dup2(c->saved_fd, STDERR_FILENO), STDERR_FILENO);
	close(c->saved_fd);
	len = ftell(c->f);
	assert_true(len >= 0);
	buf = calloc(1, (size_t)len + 1);
	assert_non_null(buf);
	rewind(c->f);
	assert_int_equal(fread(buf, 1, (size_t)len, c->f), (size_t)len);
	fclose(c->f);
	return buf;
}

static void test_line_format(void **state)
{
	enum vlog_level saved = vlog_get_level();
	struct capture c;
	char *out;

	(void)state;
	vlog_set_level(VLOG_DEBUG);
	capture_begin(&c);
	vlog_err("vcan0", "cannot open %s", "it");
	vlog_warn("vq 1", "queue broken: %d", 7);
	vlog_info("vcan0", "controller started");
	vlog_debug(NULL, "no tag");
	out = capture_end(&c);
	vlog_set_level(saved);
	assert_string_equal(out, "vhost-device-can: error: vcan0: cannot open it\n"
				 "vhost-device-can: warning: vq 1: queue broken: 7\n"
				 "vhost-device-can: info: vcan0: controller started\n"
				 "vhost-device-can: debug: no tag\n");
	free(out);
}

static void test_threshold(void **state)
{
	enum vlog_level saved = vlog_get_level();
	struct capture c;
	char *out;

	(void)state;
	/* The default (what the daemon runs with unless -v or -q). */
	assert_int_equal(saved, VLOG_INFO);
	capture_begin(&c);
	vlog_info("d", "shown");
	vlog_debug("d", "hidden");
	vlog_set_level(VLOG_ERR);
	vlog_warn("d", "hidden too");
	vlog_err("d", "errors always");
	out = capture_end(&c);
	vlog_set_level(saved);
	assert_string_equal(out, "vhost-device-can: info: d: shown\n"
				 "vhost-device-can: error: d: errors always\n");
	free(out);
}

/* A long message is cut, still one line. */
static void test_long_line(void **state)
{
	char big[2000];
	struct capture c;
	char *out;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	capture_begin(&c);
	vlog_err("d", "%s", big);
	out = capture_end(&c);
	assert_true(strlen(out) > 100 && strlen(out) < sizeof(big));
	assert_non_null(strchr(out, '\n'));
	assert_int_equal(strchr(out, '\n') - out, (ptrdiff_t)strlen(out) - 1);
	free(out);
}

/* The limit itself, on a made-up clock: a burst per window, then held back. */
static void test_limit_window(void **state)
{
	struct vlog_limit l = {0};
	unsigned int held = 99;

	(void)state;
	for (unsigned int i = 0; i < VLOG_LIMIT_BURST; i++) {
		assert_true(vlog_limit_ok(&l, 5000 + i, &held));
		assert_int_equal(held, 0);
	}
	assert_false(vlog_limit_ok(&l, 5100, &held));
	assert_false(vlog_limit_ok(&l, 5000 + VLOG_LIMIT_WINDOW_MS - 1, &held));
	/* A new window: one line again, saying how many were held back. */
	assert_true(vlog_limit_ok(&l, 5000 + VLOG_LIMIT_WINDOW_MS, &held));
	assert_int_equal(held, 2);
	assert_true(vlog_limit_ok(&l, 5000 + VLOG_LIMIT_WINDOW_MS + 1, &held));
	assert_int_equal(held, 0);
	assert_int_equal(l.total_suppressed, 2);
	/* A clock that went back starts a window rather than locking up. */
	l.count = VLOG_LIMIT_BURST;
	assert_true(vlog_limit_ok(&l, 10, &held));
}

static unsigned int count_lines(const char *s)
{
	unsigned int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* 100 lines at once through one limit: VLOG_LIMIT_BURST go out. */
static void test_limited_lines(void **state)
{
	struct vlog_limit l = {0};
	struct capture c;
	char *out;

	(void)state;
	capture_begin(&c);
	for (int i = 0; i < 100; i++)
		vlog_limited(&l, VLOG_ERR, "d", "bad request %d", i);
	/* As if the window had passed: the next line reports the rest. */
	l.window_start_ms -= 2 * VLOG_LIMIT_WINDOW_MS;
	vlog_limited(&l, VLOG_ERR, "d", "bad request again");
	out = capture_end(&c);
	assert_int_equal(count_lines(out), VLOG_LIMIT_BURST + 2);
	assert_non_null(strstr(out, "vhost-device-can: error: d: bad request 9\n"));
	assert_null(strstr(out, "bad request 10\n"));
	assert_non_null(strstr(out, "d: 90 similar lines held back (rate limit)\n"
				    "vhost-device-can: error: d: bad request again\n"));
	free(out);
}

static void test_vlog_level_round_trip(void **state)
{
	enum vlog_level saved = vlog_get_level();

	(void)state;
	vlog_set_level(VLOG_DEBUG);
	assert_int_equal(vlog_get_level(), VLOG_DEBUG);
	vlog_set_level(VLOG_ERR);
	assert_int_equal(vlog_get_level(), VLOG_ERR);
	vlog_set_level(saved);
	assert_int_equal(vlog_get_level(), saved);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_line_format),	  cmocka_unit_test(test_threshold),
	    cmocka_unit_test(test_long_line),	  cmocka_unit_test(test_limit_window),
	    cmocka_unit_test(test_limited_lines), cmocka_unit_test(test_vlog_level_round_trip),
	};

	/* cmocka prints to stdout; stderr is ours to capture. */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
