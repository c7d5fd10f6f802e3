package execute

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/e2c-dev/e2c/engine/transport"
)

// The package, service and user modules run the host's own tools
// (apt-get and dpkg, systemctl or the init scripts, useradd and usermod)
// and change something only when the host differs from what is asked.

// apt installs, upgrades or removes Debian packages, as Ansible's apt.
func (c *call) apt() (map[string]any, error) {
	names := c.a.list("name")
	state := c.a.str("state")
	switch state {
	case "", "installed":
		state = "present"
	case "removed":
		state = "absent"
	}
	deb := c.a.str("deb")
	validFor := 0
	if c.a.has("cache_valid_time") {
		n, err := strconv.Atoi(c.a.str("cache_valid_time"))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("apt: cache_valid_time %q is not a number of seconds", c.a.str("cache_valid_time"))
		}
		validFor = n
	}
	update := c.a.boolean("update_cache", false) || validFor > 0
	opts := "-y -q"
	if c.a.has("install_recommends") {
		opts += fmt.Sprintf(" -o APT::Install-Recommends=%t", c.a.boolean("install_recommends", true))
	}
	remove := "remove"
	if c.a.boolean("purge", false) {
		remove = "purge"
	}
	script := fmt.Sprintf(`export DEBIAN_FRONTEND=noninteractive
command -v apt-get >/dev/null 2>&1 || { echo "msg the host has no apt-get: e2c's apt and package modules need Debian's tools"; exit 5; }
e2c_cache_time() { stat -c %%Y /var/lib/apt/periodic/update-success-stamp 2>/dev/null || stat -c %%Y /var/lib/apt/lists 2>/dev/null || echo 0; }
e2c_version() { dpkg-query -W -f='${Status} ${Version}\n' -- "$1" 2>/dev/null | sed -n 's/^install ok installed //p'; }
t=$(e2c_cache_time)
if [ %t = true ] && [ $(( $(date +%%s) - t )) -ge %d ]; then
  apt-get update -q >/dev/null 2>/tmp/e2c-apt.$$ || { echo "msg Failed to update apt cache: $(tail -n 1 /tmp/e2c-apt.$$)"; rm -f /tmp/e2c-apt.$$; exit 5; }
  rm -f /tmp/e2c-apt.$$
  n=$(e2c_cache_time); [ "$n" = "$t" ] || echo cache_updated; t=$n
fi
echo "cache_time $t"
`, update, max(validFor, 0))
	switch {
	case deb != "":
		script += fmt.Sprintf(`d=%s
[ -f "$d" ] || { echo "msg the deb file $d does not exist on the host"; exit 5; }
p=$(dpkg-deb -f "$d" Package) && v=$(dpkg-deb -f "$d" Version) || exit 1
[ "$(e2c_version "$p")" = "$v" ] && exit 0
echo changed
dpkg -i "$d"`, quote(deb))
	case state == "absent":
		script += fmt.Sprintf(`set --
for p in %s; do [ -n "$(e2c_version "${p%%%%=*}")" ] && set -- "$@" "${p%%%%=*}"; done
[ $# = 0 ] && exit 0
echo changed
apt-get %s %s -- "$@"`, quoteWords(names), opts, remove)
	default:
		script += fmt.Sprintf(`set --
for p in %s; do
  n=${p%%%%=*} v=; [ "$n" = "$p" ] || v=${p#*=}
  i=$(e2c_version "$n")
  if [ -z "$i" ] || { [ -n "$v" ] && [ "$i" != "$v" ]; }; then set -- "$@" "$p"
  elif [ %s = latest ] && [ -n "$(apt-cache policy -- "$n" | sed -n 's/^ *Candidate: //p' | grep -vxF -- "$i" | grep -vx '(none)')" ]; then set -- "$@" "$n"; fi
done
[ $# = 0 ] && exit 0
for p; do apt-cache show -- "${p%%%%=*}" >/dev/null 2>&1 || { echo "msg No package matching '${p%%%%=*}' is available"; exit 5; }; done
echo changed
apt-get install %s -- "$@"`, quoteWords(names), state, opts)
	}
	var stdout, stderr strings.Builder
	res, err := c.r.Run(c.ctx, transport.Command{Script: prelude + script, Env: c.t.Environment, Sudo: c.t.Become, Stdout: &stdout, Stderr: &stderr})
	s, _ := parseHostOutput(markerLines(stdout.String()))
	out := map[string]any{"changed": s.changed(), "cache_updated": false}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n") {
		switch k, v, _ := strings.Cut(l, " "); {
		case l == "cache_updated":
			out["cache_updated"] = true
		case k == "cache_time":
			out["cache_update_time"], _ = strconv.Atoi(v)
		case l == "changed" || k == "msg":
		default:
			lines = append(lines, l)
		}
	}
	switch {
	case deb == "" && len(names) == 0:
		out["changed"] = out["cache_updated"]
	case deb != "" || state == "absent":
		// Ansible tells the cache only where it looks packages up.
		delete(out, "cache_updated")
		delete(out, "cache_update_time")
	}
	if s.changed() || deb != "" {
		text := strings.Join(lines, "\n")
		if text != "" {
			text += "\n"
		}
		out["stdout"], out["stderr"] = text, stderr.String()
		out["stdout_lines"], out["stderr_lines"] = splitLines(text), splitLines(stderr.String())
	}
	if err != nil {
		for _, l := range s.lines {
			if msg, ok := strings.CutPrefix(l, "msg "); ok {
				return failed(nil, "%s", msg)
			}
		}
		out = map[string]any{"rc": res.Code, "stdout": out["stdout"], "stderr": stderr.String()}
		return failed(out, "%v", hostError(res, err))
	}
	return out, nil
}

// markerLines keeps the lines of a script's output that e2c's scripts
// print ("changed", "msg ..."), dropping the tools' own.
func markerLines(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if l == "changed" || strings.HasPrefix(l, "msg ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// pkg is Ansible's package module, for hosts with apt.
func (c *call) pkg() (map[string]any, error) { return c.apt() }

// systemd manages a unit with systemctl: daemon_reload first, then state
// (started and stopped only when it is not already so), then enabled.
func (c *call) systemd() (map[string]any, error) {
	return c.unit(false)
}

// service is systemd where the host runs systemd, its init scripts
// (/etc/init.d) otherwise.
func (c *call) service() (map[string]any, error) {
	return c.unit(true)
}

func (c *call) unit(initScripts bool) (map[string]any, error) {
	name, state := c.a.str("name"), c.a.str("state")
	s, err := c.probe(unitScript(name, state, c.a.has("enabled"), c.a.boolean("enabled", false), c.a.boolean("daemon_reload", false), initScripts))
	res := map[string]any{"changed": s.changed()}
	if name != "" {
		res["name"] = name
	}
	if state != "" {
		res["state"] = state
	}
	if c.a.has("enabled") {
		res["enabled"] = c.a.boolean("enabled", false)
	}
	status := map[string]any{}
	for _, l := range s.lines {
		if kv, ok := strings.CutPrefix(l, "show "); ok {
			k, v, _ := strings.Cut(kv, "=")
			status[k] = v
		}
	}
	if len(status) > 0 {
		res["status"] = status
	}
	if err != nil {
		return failed(res, "%v", err)
	}
	return res, nil
}

// unitScript is the script of systemd and service.
func unitScript(name, state string, setEnabled, enabled, daemonReload, initScripts bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "n=%s\n", quote(name))
	b.WriteString(`if [ -d /run/systemd/system ]; then
  e2c_is_active() { systemctl is-active --quiet -- "$n"; }
  e2c_do() { systemctl "$1" -- "$n"; }
  e2c_is_enabled() { systemctl is-enabled --quiet -- "$n" 2>/dev/null; }
  e2c_enable() { systemctl "$1" -- "$n"; }
`)
	if daemonReload {
		b.WriteString(`  o=$(systemctl daemon-reload 2>&1) || { echo "msg failure during daemon-reload: $o"; exit 5; }` + "\n")
	}
	if name != "" {
		b.WriteString(`  [ "$(systemctl show -p LoadState --value -- "$n")" = not-found ] && { echo "msg Could not find the requested service $n: host"; exit 5; }` + "\n")
	}
	if initScripts {
		b.WriteString(`elif [ -n "$n" ] && [ -x "/etc/init.d/$n" ]; then
  e2c_is_active() { "/etc/init.d/$n" status >/dev/null 2>&1; }
  e2c_do() { "/etc/init.d/$n" "$1"; }
  e2c_is_enabled() { ls /etc/rc[2-5].d/S*"$n" >/dev/null 2>&1; }
  e2c_enable() { update-rc.d "$n" "$1"; }
elif [ -n "$n" ]; then
  echo "msg Could not find the requested service $n: host"; exit 5
`)
	}
	b.WriteString(`else
  o=$(systemctl is-system-running 2>&1); echo "msg systemd is not running on the host: ${o:-no /run/systemd/system}"; exit 5
fi
`)
	switch state {
	case "started":
		b.WriteString("e2c_is_active || { e2c_do start >&2 || exit 1; echo changed; }\n")
	case "stopped":
		b.WriteString("! e2c_is_active || { e2c_do stop >&2 || exit 1; echo changed; }\n")
	case "restarted":
		b.WriteString("e2c_do restart >&2 || exit 1; echo changed\n")
	case "reloaded":
		b.WriteString("if e2c_is_active; then e2c_do reload >&2; else e2c_do start >&2; fi || exit 1; echo changed\n")
	}
	if setEnabled {
		if enabled {
			b.WriteString("e2c_is_enabled || { e2c_enable enable >&2 || exit 1; echo changed; }\n")
		} else {
			b.WriteString("! e2c_is_enabled || { e2c_enable disable >&2 || exit 1; echo changed; }\n")
		}
	}
	if name != "" {
		b.WriteString(`[ -d /run/systemd/system ] && systemctl show -- "$n" | sed 's/^/show /'` + "\nexit 0\n")
	}
	return b.String()
}

// user creates, changes or removes a local user with useradd, usermod
// and userdel, as Ansible's user module.
func (c *call) user() (map[string]any, error) {
	name := c.a.str("name")
	res := map[string]any{"name": name, "state": "present"}
	if c.a.str("state") == "absent" {
		res["state"] = "absent"
		flag := ""
		if c.a.boolean("remove", false) {
			flag = "-r "
		}
		s, err := c.probe(fmt.Sprintf(`n=%s
getent passwd -- "$n" >/dev/null || exit 0
echo changed
userdel %s-- "$n" >&2`, quote(name), flag))
		res["changed"] = s.changed()
		if s.changed() {
			res["force"], res["remove"] = false, c.a.boolean("remove", false)
		}
		if err != nil {
			return failed(res, "userdel: %v", err)
		}
		return res, nil
	}
	var add, mod []string
	set := func(arg, flag string) {
		if c.a.has(arg) {
			add = append(add, flag, quote(c.a.str(arg)))
		}
	}
	set("uid", "-u")
	set("group", "-g")
	set("shell", "-s")
	set("home", "-d")
	set("comment", "-c")
	groups := strings.Join(c.a.list("groups"), ",")
	if c.a.has("groups") {
		add = append(add, "-G", quote(groups))
	}
	if c.a.boolean("create_home", true) {
		add = append(add, "-m")
	} else {
		add = append(add, "-M")
	}
	if c.a.boolean("system", false) {
		add = append(add, "-r")
	}
	// What differs from the passwd entry (name:pw:uid:gid:comment:home:shell).
	check := func(arg, field, flag string) {
		if c.a.has(arg) {
			mod = append(mod, fmt.Sprintf(`[ "$(echo "$e" | cut -d: -f%s)" = %s ] || set -- "$@" %s %s`, field, quote(c.a.str(arg)), flag, quote(c.a.str(arg))))
		}
	}
	check("uid", "3", "-u")
	check("comment", "5", "-c")
	check("home", "6", "-d")
	check("shell", "7", "-s")
	if c.a.has("group") {
		mod = append(mod, fmt.Sprintf(`g=$(getent group -- %s | cut -d: -f3); [ "$(echo "$e" | cut -d: -f4)" = "$g" ] || set -- "$@" -g %s`, quote(c.a.str("group")), quote(c.a.str("group"))))
	}
	if c.a.has("groups") {
		// The supplementary groups, without the primary one, as a sorted list.
		want := fmt.Sprintf(`$(printf '%%s\n' %s | tr ',' '\n' | sed '/^$/d' | sort -u | paste -sd, -)`, quote(groups))
		if c.a.boolean("append", false) {
			mod = append(mod, fmt.Sprintf(`miss=$(printf '%%s\n' %s | tr ',' '\n' | sed '/^$/d' | while read -r x; do echo "$have" | tr ',' '\n' | grep -qxF -- "$x" || echo "$x"; done | paste -sd, -)
[ -z "$miss" ] || set -- "$@" -a -G "$miss"`, quote(groups)))
		} else {
			mod = append(mod, fmt.Sprintf(`[ "$have" = "%s" ] || set -- "$@" -G %s`, want, quote(groups)))
		}
	}
	script := fmt.Sprintf(`n=%s
if ! e=$(getent passwd -- "$n"); then
  echo changed; echo created
  useradd %s -- "$n" >&2 || exit 1
else
  p=$(id -gn -- "$n")
  have=$(id -Gn -- "$n" | tr ' ' '\n' | grep -vxF -- "$p" | sort -u | paste -sd, -)
  set --
  %s
  if [ $# -gt 0 ]; then echo changed; usermod "$@" -- "$n" >&2 || exit 1; fi
fi
printf 'entry %%s\n' "$(getent passwd -- "$n")"`, quote(name), strings.Join(add, " "), strings.Join(mod, "\n  "))
	s, err := c.probe(script)
	res["changed"] = s.changed()
	for _, l := range s.lines {
		if e, ok := strings.CutPrefix(l, "entry "); ok {
			f := strings.Split(e, ":")
			if len(f) == 7 {
				res["uid"], _ = strconv.Atoi(f[2])
				res["group"], _ = strconv.Atoi(f[3])
				res["comment"], res["home"], res["shell"] = f[4], f[5], f[6]
			}
		}
		if l == "created" {
			res["create_home"], res["system"] = c.a.boolean("create_home", true), c.a.boolean("system", false)
		}
	}
	if _, created := res["create_home"]; !created {
		res["append"], res["move_home"] = c.a.boolean("append", false), false
	}
	if c.a.has("groups") {
		res["groups"] = groups
	}
	if err != nil {
		return failed(res, "%v", err)
	}
	return res, nil
}
