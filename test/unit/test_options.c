/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The daemon's option table (src/daemon/options.c), in process: every
 * device option works as an option and as a --device key, lands in the
 * same place with the same bounds and the same message, and --help lists
 * every row.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "options.h"

static struct options opts;
static char err[4096];

/* options_parse on a copy of args (NULL-terminated); its stderr into err. */
static int parse(const char *first, ...)
{
	static char store[16][512];
	char *argv[17] = {"vhost-device-can"};
	int argc = 1, saved, ret;
	FILE *tmp = tmpfile();
	const char *a = first;
	va_list ap;
	size_t n;

	assert_non_null(tmp);
	va_start(ap, first);
	for (; a && argc < 16; a = va_arg(ap, const char *), argc++) {
		snprintf(store[argc], sizeof(store[argc]), "%s", a);
		argv[argc] = store[argc];
	}
	va_end(ap);
	argv[argc] = NULL;
	fflush(stderr);
	saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fileno(tmp), 2), 2);
	ret = options_parse(argc, argv, &opts);
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	rewind(tmp);
	n = fread(err, 1, sizeof(err) - 1, tmp);
	err[n] = '\0';
	fclose(tmp);
	return ret;
}

/* err's first line with "--device KEY" or "--KEY" replaced by "KEY". */
static void first_line(const char *name, char *out, size_t cap)
{
	char dev[64], opt[64];
	const char *p;

	snprintf(dev, sizeof(dev), "--device %s", name);
	snprintf(opt, sizeof(opt), "--%s", name);
	p = strstr(err, dev);
	if (p)
		snprintf(out, cap, "%.*s%s", (int)(p - err), err, p + strlen("--device "));
	else if ((p = strstr(err, opt)) != NULL)
		snprintf(out, cap, "%.*s%s", (int)(p - err), err, p + 2);
	else
		snprintf(out, cap, "%s", err);
	out[strcspn(out, "\n")] = '\0';
}

/* A value key k takes (its list separator given), or NULL for a flag. */
static const char *sample(const struct options_key *k, char sep, char *buf, size_t cap)
{
	switch (k->kind) {
	case OPTIONS_FLAG:
		return NULL;
	case OPTIONS_UINT:
		snprintf(buf, cap, "%u", k->max);
		break;
	case OPTIONS_FD:
		snprintf(buf, cap, "7");
		break;
	case OPTIONS_SIZE:
		snprintf(buf, cap, "3G");
		break;
	case OPTIONS_FILTERS:
		snprintf(buf, cap, "123:7FF%c12345678~1FFFFFFF", sep);
		break;
	case OPTIONS_BITRATE:
		snprintf(buf, cap, "500k%c2M", sep);
		break;
	default:
		snprintf(buf, cap, "x-%s", k->name);
		break;
	}
	return buf;
}

/* Run one device with key k = v, as an option (as_device false) or a --device key. */
static int parse_one(const struct options_key *k, const char *v, bool as_device)
{
	bool is_fd = k->kind == OPTIONS_FD;
	char kv[256], spec[512];

	if (as_device) {
		if (v)
			snprintf(kv, sizeof(kv), "%s=%s", k->name, v);
		else
			snprintf(kv, sizeof(kv), "%s", k->name);
		snprintf(spec, sizeof(spec), "%scan-in=vcan0,can-out=vcan0,%s",
			 is_fd ? "" : "socket-path=/tmp/t.sock,", kv);
		return parse("--device", spec, NULL);
	}
	if (v)
		snprintf(kv, sizeof(kv), "--%s=%s", k->name, v);
	else
		snprintf(kv, sizeof(kv), "--%s", k->name);
	if (is_fd)
		return parse("-i", "vcan0", "-o", "vcan0", kv, NULL);
	return parse("-s", "/tmp/t.sock", "-i", "vcan0", "-o", "vcan0", kv, NULL);
}

/* Every device option as an option and as a --device key: the same value in the same place. */
static void test_every_key_both_ways(void **state)
{
	(void)state;
	for (unsigned int i = 0; i < options_nkeys; i++) {
		const struct options_key *k = &options_keys[i];
		struct dev_opts a, b;
		char buf[128];
		const char *v;

		if (k->scope == OPTIONS_PROCESS)
			continue;
		v = sample(k, ',', buf, sizeof(buf));
		assert_int_equal(parse_one(k, v, false), 0);
		a = opts.dev[0];
		v = sample(k, '+', buf, sizeof(buf));
		assert_int_equal(parse_one(k, v, true), 0);
		b = opts.dev[0];
		switch (k->kind) {
		case OPTIONS_TEXT:
			assert_string_equal(*(const char **)(void *)((char *)&a + k->at),
					    *(const char **)(void *)((char *)&b + k->at));
			assert_string_equal(*(const char **)(void *)((char *)&a + k->at), buf);
			break;
		case OPTIONS_FLAG:
			assert_true(*(bool *)((char *)&a + k->at));
			assert_true(*(bool *)((char *)&b + k->at));
			break;
		case OPTIONS_UINT:
			assert_int_equal(*(unsigned int *)(void *)((char *)&a + k->at), k->max);
			assert_int_equal(*(unsigned int *)(void *)((char *)&b + k->at), k->max);
			break;
		case OPTIONS_FD:
			assert_int_equal(a.fd, 7);
			assert_int_equal(b.fd, 7);
			assert_string_equal(a.fd_from, "--fd=7");
			assert_string_equal(b.fd_from, "--device fd=7");
			break;
		case OPTIONS_SIZE:
			assert_true(*(uint64_t *)(void *)((char *)&a + k->at) == 3ull << 30);
			assert_true(*(uint64_t *)(void *)((char *)&b + k->at) == 3ull << 30);
			break;
		case OPTIONS_FILTERS:
			assert_true(*(bool *)((char *)&a + k->at2));
			assert_true(*(bool *)((char *)&b + k->at2));
			assert_memory_equal((char *)&a + k->at, (char *)&b + k->at,
					    sizeof(struct cfilt));
			break;
		case OPTIONS_BITRATE:
			assert_int_equal(a.bitrate, 500000);
			assert_int_equal(a.dbitrate, 2000000);
			assert_int_equal(b.bitrate, 500000);
			assert_int_equal(b.dbitrate, 2000000);
			break;
		case OPTIONS_OTHER:
			fail_msg("%s: a device option parsed by hand", k->name);
		}
	}
}

/* A number's bounds hold both ways, with one message. */
static void test_bounds_both_ways(void **state)
{
	(void)state;
	for (unsigned int i = 0; i < options_nkeys; i++) {
		const struct options_key *k = &options_keys[i];
		const unsigned long long bad[] = {(unsigned long long)k->min - 1,
						  (unsigned long long)k->max + 1};

		if (k->scope == OPTIONS_PROCESS || k->kind != OPTIONS_UINT)
			continue;
		for (unsigned int j = 0; j < 2; j++) {
			char v[32], as_opt[sizeof(err)], as_dev[sizeof(err)];

			if (j == 0 && k->min == 0)
				continue;
			snprintf(v, sizeof(v), "%llu", bad[j]);
			assert_int_equal(parse_one(k, v, false), -1);
			first_line(k->name, as_opt, sizeof(as_opt));
			assert_int_equal(parse_one(k, v, true), -1);
			first_line(k->name, as_dev, sizeof(as_dev));
			assert_string_equal(as_opt, as_dev);
			assert_non_null(strstr(as_opt, "is not a number in"));
		}
	}
}

/* --name names the one device; it describes that device only, so not with --device. */
static void test_name_option(void **state)
{
	(void)state;
	assert_int_equal(
	    parse("--name=bus0", "-s", "/tmp/t.sock", "-i", "vcan0", "-o", "vcan1", NULL), 0);
	assert_string_equal(opts.dev[0].name, "bus0");
	assert_int_equal(parse("--name=bus0", "--device",
			       "socket-path=/tmp/t.sock,can-in=vcan0,can-out=vcan0", NULL),
			 -1);
	assert_non_null(strstr(err, "cannot be mixed with -s, --fd, -i, -o or --name"));
}

/* A flag in --device takes =1 and =0 (turning off the options' default), as the option does. */
static void test_flag_values(void **state)
{
	(void)state;
	assert_int_equal(
	    parse("--device", "socket-path=/tmp/t.sock,can-in=a,can-out=a,link-up=1", NULL), 0);
	assert_true(opts.dev[0].link_up);
	assert_int_equal(parse("--link-up", "--no-fd", "--device",
			       "socket-path=/tmp/t.sock,can-in=a,can-out=a,link-up=0,no-fd=0",
			       "--device", "socket-path=/tmp/u.sock,can-in=b,can-out=b", NULL),
			 0);
	assert_false(opts.dev[0].link_up);
	assert_false(opts.dev[0].no_fd);
	assert_true(opts.dev[1].link_up);
	assert_true(opts.dev[1].no_fd);
	assert_int_equal(parse("--link-up=0", "-s", "/tmp/t.sock", "-i", "a", "-o", "a", NULL), 0);
	assert_false(opts.dev[0].link_up);
	assert_int_equal(parse("--link-up=yes", "-s", "/tmp/t.sock", "-i", "a", "-o", "a", NULL),
			 -1);
	assert_non_null(strstr(err, "--link-up: 'yes' is not 1 or 0"));
	assert_int_equal(
	    parse("--device", "socket-path=/tmp/t.sock,can-in=a,can-out=a,link-up=yes", NULL), -1);
	assert_non_null(strstr(err, "--device link-up: 'yes' is not 1 or 0"));
}

/* The process's options are no --device keys. */
static void test_process_keys_not_in_device(void **state)
{
	(void)state;
	assert_int_equal(parse("--device",
			       "socket-path=/tmp/t.sock,can-in=a,can-out=a,guest-mem-total=1G",
			       NULL),
			 -1);
	assert_non_null(strstr(err, "unknown key 'guest-mem-total'"));
}

/* --help lists every row of the table, with its value's name. */
static void test_usage_lists_every_key(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	assert_non_null(f);
	options_usage(f);
	fclose(f);
	for (unsigned int i = 0; i < options_nkeys; i++) {
		const struct options_key *k = &options_keys[i];
		char want[96];

		if (k->arg)
			snprintf(want, sizeof(want), "--%s=%s ", k->name, k->arg);
		else
			snprintf(want, sizeof(want), "--%s ", k->name);
		if (!strstr(text, want))
			fail_msg("--help does not list %s", want);
		if (k->letter) {
			snprintf(want, sizeof(want), "  -%c, --%s", k->letter, k->name);
			if (!strstr(text, want))
				fail_msg("--help does not list %s", want);
		}
	}
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_key_both_ways),
	    cmocka_unit_test(test_bounds_both_ways),
	    cmocka_unit_test(test_name_option),
	    cmocka_unit_test(test_flag_values),
	    cmocka_unit_test(test_process_keys_not_in_device),
	    cmocka_unit_test(test_usage_lists_every_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
