/*
 * client.c: one libcurl easy request per call against the admin API.
 */
#include "cmd/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/api.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/xalloc.h"

#define CLIENT_CONNECT_TIMEOUT_S 10L
#define CLIENT_TIMEOUT_S 600L

static size_t
client_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;

	if (buf_append(b, p, size * nmemb) < 0)
		return 0; /* curl aborts the transfer: CURLE_WRITE_ERROR */
	return size * nmemb;
}

/* The base URL ("http://127.0.0.1:8025") for the admin listen address. */
static int
client_base_url(const char *listen, char *out, size_t n)
{
	char host[128];
	int port;

	if (api_parse_listen(listen, host, sizeof(host), &port) < 0 || port == 0)
		return -1;
	/* a wildcard listener is reached on loopback */
	if (strcmp(host, "0.0.0.0") == 0)
		str_copy(host, "127.0.0.1", sizeof(host));
	else if (strcmp(host, "::") == 0)
		str_copy(host, "::1", sizeof(host));
	if (strchr(host, ':') != NULL)
		snprintf(out, n, "http://[%s]:%d", host, port);
	else
		snprintf(out, n, "http://%s:%d", host, port);
	return 0;
}

char *
client_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *copy;

	if (e == NULL)
		return xstrdup("");
	copy = xstrdup(e);
	curl_free(e);
	return copy;
}

int
client_call(const struct settings *cfg, const char *method, const char *path,
    const char *body, size_t len, const char *content_type, json_t **out,
    char *err, size_t errlen)
{
	char base[200], token[API_TOKEN_MAX + 1], cerr[CURL_ERROR_SIZE] = "";
	char *url = NULL, *auth = NULL, *ctype = NULL;
	struct curl_slist *hdrs = NULL;
	struct buf resp;
	json_error_t jerr;
	json_t *j = NULL;
	CURL *h = NULL;
	CURLcode cc;
	long status = 0, oserr = 0;
	int rc = CLIENT_ECONNECT;

	if (out != NULL)
		*out = NULL;
	buf_init(&resp, CLIENT_RESPONSE_MAX);
	if (client_base_url(cfg->admin_listen, base, sizeof(base)) < 0) {
		snprintf(err, errlen, "admin listen address \"%s\" is not IP:PORT",
		    cfg->admin_listen);
		goto done;
	}
	if (api_token_read(cfg->admin_token_file, token, sizeof(token), err,
	    errlen) < 0) {
		size_t l = strlen(err);
		snprintf(err + l, errlen - l, " (is `sluice serve` running, and "
		    "may you read its data directory?)");
		goto done;
	}
	url = xasprintf("%s%s", base, path);
	auth = xasprintf("Authorization: Bearer %s", token);
	explicit_bzero(token, sizeof(token));
	hdrs = curl_slist_append(hdrs, auth);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (body != NULL) {
		ctype = xasprintf("Content-Type: %s",
		    content_type ? content_type : "application/json");
		hdrs = curl_slist_append(hdrs, ctype);
	}

	h = curl_easy_init();
	if (h == NULL) {
		snprintf(err, errlen, "cannot initialise libcurl");
		goto done;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CLIENT_CONNECT_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, CLIENT_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, client_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
	if (body != NULL) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	} else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	}

	cc = curl_easy_perform(h);
	if (cc == CURLE_WRITE_ERROR) {
		snprintf(err, errlen, "the daemon's reply is larger than %zu bytes",
		    CLIENT_RESPONSE_MAX);
		rc = CLIENT_EPROTO;
		goto done;
	}
	if (cc != CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
		if (cc == CURLE_COULDNT_CONNECT && oserr != 0)
			snprintf(err, errlen, "cannot reach the daemon at %s: %s (is "
			    "`sluice serve` running?)", cfg->admin_listen,
			    strerror((int)oserr));
		else
			snprintf(err, errlen, "cannot reach the daemon at %s: %s",
			    cfg->admin_listen, *cerr ? cerr : curl_easy_strerror(cc));
		goto done;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	j = json_loadb(resp.data ? resp.data : "", resp.len, 0, &jerr);
	if (status >= 200 && status < 300) {
		if (!json_is_object(j)) {
			snprintf(err, errlen, "the daemon's reply to %s %s is not a "
			    "JSON object", method, path);
			rc = CLIENT_EPROTO;
			goto done;
		}
		rc = 0;
	} else {
		const char *msg = json_string_value(json_object_get(j, "error"));
		if (msg != NULL)
			str_copy(err, msg, errlen);
		else
			snprintf(err, errlen, "%s %s: HTTP status %ld", method, path,
			    status);
		rc = CLIENT_EHTTP;
	}
	if (out != NULL && json_is_object(j)) {
		*out = j;
		j = NULL;
	}
done:
	json_decref(j);
	if (h != NULL)
		curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	if (auth != NULL) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	free(ctype);
	free(url);
	buf_fini(&resp);
	return rc;
}
