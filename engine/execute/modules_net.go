package execute

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/e2c-dev/e2c/engine/tmpl"
	"github.com/e2c-dev/e2c/engine/transport"
)

// get_url and uri run on the host, as in Ansible (a URL names what the
// host reaches), with its curl; get_url falls back to wget.

// curlFunc downloads with curl or wget: e2c_get URL FILE HEADERS prints the
// status code; the response headers go to HEADERS.
const curlFunc = `e2c_get() {
  u=$1 o=$2 hd=$3; shift 3
  if command -v curl >/dev/null 2>&1; then
    curl -sS -L -o "$o" -D "$hd" -w '%{http_code}' "$@" "$u" 2>"$hd.err"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -S -O "$o" "$u" 2>"$hd"; sed -i 's/^  //' "$hd"
    grep '^HTTP/' "$hd" | tail -n 1 | cut -d' ' -f2
  else echo "msg the host has neither curl nor wget"; return 5; fi
}
# e2c_reason HEADERS: the reason phrase of the last status line.
e2c_reason() { grep '^HTTP/' "$1" | tail -n 1 | tr -d '\r' | cut -d' ' -f3-; }
`

// getURL downloads url to dest on the host, as Ansible's get_url: a
// file already there is downloaded again only if the server says it
// changed (If-Modified-Since) or with force, and replaced only if its
// content differs; checksum ("sha256:HEX") is verified.
func (c *call) getURL() (map[string]any, error) {
	url, dest := c.a.str("url"), c.a.str("dest")
	algo, want, _ := strings.Cut(c.a.str("checksum"), ":")
	if c.a.has("checksum") && want == "" {
		return failed(nil, "The checksum parameter has to be in format <algorithm>:<checksum>")
	}
	if want != "" {
		switch algo {
		case "md5", "sha1", "sha224", "sha256", "sha384", "sha512":
		default:
			return failed(nil, "unsupported checksum algorithm %q", algo)
		}
		want = strings.ToLower(want)
	}
	timeout, err := c.a.seconds("timeout", 10e9)
	if err != nil {
		return nil, err
	}
	opts := []string{"--max-time", strconv.Itoa(int(timeout.Seconds()))}
	if !c.a.boolean("validate_certs", true) {
		opts = append(opts, "-k")
	}
	opts = append(opts, headerOpts(c.a.mapping("headers"))...)
	force := "0"
	if c.a.boolean("force", false) {
		force = "1"
	}
	script := curlFunc + fmt.Sprintf(`u=%s d=%s force=%s algo=%s want=%s
e2c_sum() { ${algo:-sha1}sum -- "$1" | cut -d' ' -f1; }
dir=0; [ -d "$d" ] && dir=1
set --
if [ $dir = 0 ] && [ -e "$d" ] && [ $force = 0 ]; then
  if [ -n "$want" ] && [ "$(e2c_sum "$d")" = "$want" ]; then
    echo "msg0 file already exists"; echo nosums; %s e2c_stat "$d"; exit 0
  fi
  [ -n "$want" ] || set -- -z "$d"
fi
t=$(mktemp) && h=$(mktemp) || exit 1
trap 'rm -f -- "$t" "$h" "$h.err"' EXIT
code=$(e2c_get "$u" "$t" "$h" "$@" %s) || { [ -s "$h.err" ] && echo "msg Request failed: $(tail -n 1 "$h.err")"; exit 5; }
reason=$(e2c_reason "$h")
case $code in
304) echo "status $code"; echo "msg0 HTTP Error 304: Not Modified"; e2c_stat "$d"; exit 0 ;;
200) ;;
*) echo "status $code"; echo "response HTTP Error $code: $reason"; echo "msg Request failed"; exit 5 ;;
esac
if [ $dir = 1 ]; then
  n=$(grep -i '^content-disposition:.*filename=' "$h" | tail -n 1 | sed 's/.*filename="\{0,1\}\([^";]*\)"\{0,1\}.*/\1/' | tr -d '\r')
  [ -n "$n" ] || n=$(basename -- "${u%%%%[?#]*}")
  d=${d%%/}/$n
fi
echo "path $d"
printf 'sum_src %%s\n' "$(sha1sum -- "$t" | cut -d' ' -f1)"
[ -e "$d" ] && printf 'sum_dest %%s\n' "$(sha1sum -- "$d" | cut -d' ' -f1)"
if ! [ -e "$d" ] || ! cmp -s -- "$t" "$d"; then
  [ -d "$(dirname -- "$d")" ] || { echo "msg Destination $(dirname -- "$d") does not exist"; exit 5; }
  e2c_write "$d" < "$t" || exit 1
  echo changed
fi
if [ -n "$want" ] && [ "$(e2c_sum "$d")" != "$want" ]; then
  got=$(e2c_sum "$d"); rm -f -- "$d"
  echo "msg The checksum for $d did not match $want; it was $got."; exit 5
fi
echo "status $code"
echo "msg0 OK ($(wc -c < "$d" | tr -d ' ') bytes)"
printf 'md5 %%s\n' "$(md5sum -- "$d" | cut -d' ' -f1)"
%s e2c_stat "$d"`, quote(url), quote(dest), force, quote(algo), quote(want), c.attrsFor(`"$d"`, false), quoteWords(opts), c.attrsFor(`"$d"`, false))
	s, err := c.probe(script)
	res := map[string]any{"url": url, "dest": dest, "changed": s.changed(), "elapsed": 0}
	for _, l := range s.lines {
		k, v, _ := strings.Cut(l, " ")
		switch k {
		case "status":
			res["status_code"], _ = strconv.Atoi(v)
		case "msg0":
			res["msg"] = v
		case "response":
			res["response"] = v
		case "sum_src":
			res["checksum_src"], res["checksum_dest"] = v, nil
		case "sum_dest":
			res["checksum_dest"] = v
		case "md5":
			res["md5sum"] = v
		case "nosums":
			res["checksum_src"], res["checksum_dest"] = nil, nil
		}
	}
	if s.path != "" {
		res["dest"] = s.path
	}
	if err != nil {
		return failed(res, "%v", err)
	}
	s.addFileKeys(res)
	return res, nil
}

// headerOpts are curl's options for a mapping of request headers.
func headerOpts(m map[string]any) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, "-H", fmt.Sprintf("%s: %v", k, m[k]))
	}
	return out
}

// uri sends an HTTP request from the host, as Ansible's uri: the status
// must be one of status_code (default 200); the response's headers are
// registered by their names in lower case with "_" for "-", its body as
// content with return_content (and as json when it is JSON), or into
// dest on the host.
func (c *call) uri() (map[string]any, error) {
	url, method := c.a.str("url"), strings.ToUpper(c.a.str("method"))
	if method == "" {
		method = "GET"
	}
	timeout, err := c.a.seconds("timeout", 30e9)
	if err != nil {
		return nil, err
	}
	want := []int{200}
	if c.a.has("status_code") {
		want = nil
		for _, s := range c.a.list("status_code") {
			n, err := strconv.Atoi(s)
			if err != nil {
				return nil, fmt.Errorf("uri: status_code %q is not a number", s)
			}
			want = append(want, n)
		}
	}
	opts := []string{"-sS", "-X", method, "--max-time", strconv.Itoa(int(timeout.Seconds()))}
	switch f := c.a.str("follow_redirects"); {
	case f == "all" || f == "yes":
		opts = append(opts, "-L")
	case f == "" || f == "safe":
		if method == "GET" || method == "HEAD" {
			opts = append(opts, "-L")
		}
	}
	if !c.a.boolean("validate_certs", true) {
		opts = append(opts, "-k")
	}
	headers := c.a.mapping("headers")
	body := ""
	if c.a.has("body") {
		body = c.a.str("body")
		if c.a.str("body_format") == "json" {
			if _, isText := c.a["body"].(string); !isText {
				data, err := json.Marshal(c.a["body"])
				if err != nil {
					return nil, fmt.Errorf("uri: body: %w", err)
				}
				body = string(data)
			}
			if !hasKey(headers, "Content-Type") {
				headers = maps.Clone(headers)
				if headers == nil {
					headers = map[string]any{}
				}
				headers["Content-Type"] = "application/json"
			}
		}
		opts = append(opts, "--data-binary", "@-")
	}
	opts = append(opts, headerOpts(headers)...)
	feed := ": |"
	if c.a.has("body") {
		feed = printBytes([]byte(body)) + " |"
	}
	var out endMarked
	script := prelude + fmt.Sprintf(`command -v curl >/dev/null 2>&1 || { echo "the host has no curl" >&2; exit 5; }
b=$(mktemp) && h=$(mktemp) || exit 1
trap 'rm -f -- "$b" "$h"' EXIT
w=$(%s curl %s -o "$b" -D "$h" -w '%%{http_code} %%{num_redirects} %%{url_effective}' %s) || exit $?
printf 'status %%s\n' "$w"
tr -d '\r' < "$h" | sed -n 's/^/header /p'
printf 'size %%s\n' "$(wc -c < "$b" | tr -d ' ')"
`, feed, quoteWords(opts), quote(url))
	dest := c.a.str("dest")
	if dest != "" {
		script += fmt.Sprintf(`d=%s; [ -d "$d" ] && d=$d/$(basename -- %s)
echo "path $d"
if ! [ -e "$d" ] || ! cmp -s -- "$b" "$d"; then e2c_write "$d" < "$b" || exit 1; echo changed; fi
e2c_stat "$d"
`, quote(dest), quote(strings.TrimRight(url, "/")))
	}
	// The body comes back when it is read: asked for, JSON, or an error's.
	script += fmt.Sprintf(`case %t:$(grep -i '^content-type:' "$h" | tail -n 1):${w%%%% *} in
true:*|*json*|*:[45]??) echo body; cat -- "$b" ;;
esac`, c.a.boolean("return_content", false))
	script += "\nprintf %s " + endMark
	res, err := c.r.Run(c.ctx, transport.Command{Script: script, Env: c.t.Environment, Sudo: c.t.Become, Stdout: &out})
	if err != nil {
		return nil, fmt.Errorf("uri %s: %w", url, hostError(res, err))
	}
	data, _ := out.data()
	head, content, hasBody := bytes.Cut(data, []byte("\nbody\n"))
	if !hasBody && bytes.HasPrefix(data, []byte("body\n")) {
		head, content, hasBody = nil, data[5:], true
	}
	s, err := parseHostOutput(string(head))
	if err != nil {
		return nil, err
	}
	result, status, reason := map[string]any{"url": url, "changed": s.changed(), "redirected": false, "elapsed": 0}, 0, ""
	for _, l := range s.lines {
		k, v, _ := strings.Cut(l, " ")
		switch k {
		case "status":
			f := strings.SplitN(v, " ", 3)
			if len(f) == 3 {
				status, _ = strconv.Atoi(f[0])
				result["redirected"], result["url"] = f[1] != "0", f[2]
			}
		case "header":
			if strings.HasPrefix(v, "HTTP/") {
				f := strings.SplitN(v, " ", 3)
				reason = ""
				if len(f) == 3 {
					reason = f[2]
				}
				continue
			}
			name, value, ok := strings.Cut(v, ":")
			if ok {
				result[strings.ReplaceAll(strings.ToLower(name), "-", "_")] = strings.TrimSpace(value)
			}
		}
	}
	result["status"] = status
	if status >= 200 && status < 300 {
		size, ok := result["content_length"].(string)
		if !ok {
			size = "unknown"
		}
		result["msg"] = fmt.Sprintf("OK (%s bytes)", size)
		result["cookies"], result["cookies_string"] = map[string]any{}, ""
	} else {
		result["msg"] = fmt.Sprintf("HTTP Error %d: %s", status, reason)
	}
	if dest != "" {
		result["path"] = s.path
		s.addFileKeys(result)
	}
	ct, _ := result["content_type"].(string)
	isJSON := strings.Contains(strings.ToLower(ct), "json")
	if hasBody && isJSON {
		if v, err := tmpl.FromJSON(string(content)); err == nil {
			result["json"] = v // as Python's json.loads: keys in order, integers as int
		}
	}
	switch {
	case c.a.boolean("return_content", false):
		result["content"] = string(content)
	case hasBody && status >= 400 && !isJSON && slices.Contains(want, status):
		result["body"] = string(content) // as Ansible leaves an accepted error's body
	}
	if !slices.Contains(want, status) {
		return failed(result, "Status code was %d and not %s: %s", status, pyIntList(want), result["msg"])
	}
	return result, nil
}

// hasKey tells whether m has key, in any case (HTTP header names).
func hasKey(m map[string]any, key string) bool {
	for k := range m {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

// pyIntList writes a list of numbers as Python does: [200, 201].
func pyIntList(l []int) string {
	s := make([]string, len(l))
	for i, n := range l {
		s[i] = strconv.Itoa(n)
	}
	return "[" + strings.Join(s, ", ") + "]"
}
