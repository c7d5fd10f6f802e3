package execute

import (
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/e2c-dev/e2c/engine/tmpl"
	"github.com/e2c-dev/e2c/engine/transport"
)

// copy sends a file or folder of this machine, or the text of content,
// to the host, as Ansible's copy does: a folder src ending in "/" copies
// its contents into dest, without the slash the folder itself goes under
// dest; a file goes to dest, or into it when dest ends in "/" or is a
// folder on the host. Without mode a new file gets 0666 less the host's
// umask and one replaced keeps its permissions; files whose content is
// already there are left alone.
func (c *call) copy() (map[string]any, error) {
	dest := c.a.str("dest")
	if c.a.has("content") {
		if strings.HasSuffix(dest, "/") {
			return failed(nil, "can not use content with a dir as dest")
		}
		src, cleanup, err := localText(path.Base(dest), c.a.str("content"))
		if err != nil {
			return nil, err
		}
		defer cleanup()
		return c.send(src, "", dest)
	}
	// Checked now, whatever validate found: files change, and a deferred
	// task's src is known only now.
	written := c.a.str("src")
	src, err := c.e.plan.Source("copy", written)
	if err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	st, err := os.Stat(src)
	if err != nil {
		return failed(nil, "Could not find or access '%s' on the Ansible Controller.", written)
	}
	target := dest
	if st.IsDir() && !strings.HasSuffix(written, "/") || !st.IsDir() && strings.HasSuffix(dest, "/") {
		target = path.Join(dest, filepath.Base(src))
	}
	res, err := c.send(src, src, target)
	if st.IsDir() && res != nil {
		res["dest"] = strings.TrimSuffix(dest, "/") + "/"
	}
	return res, err
}

// template renders a controller file with the task's variables and sends
// the text as copy does: a rendering identical to the host's file changes
// nothing.
func (c *call) template() (map[string]any, error) {
	src, err := c.e.plan.Source("template", c.a.str("src"))
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return failed(nil, "Could not find or access '%s'", c.a.str("src"))
	}
	t, err := tmpl.Parse(string(data))
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", src, err)
	}
	text, err := t.Render(c.vars)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", src, err)
	}
	local, cleanup, err := localText(filepath.Base(src), text)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	target := c.a.str("dest")
	if strings.HasSuffix(target, "/") {
		target = path.Join(target, filepath.Base(src))
	}
	return c.send(local, src, target)
}

// localText writes text to a file named name in a temporary folder of
// this machine.
func localText(name, text string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "e2c-text-*")
	if err != nil {
		return "", nil, err
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return p, func() { os.RemoveAll(dir) }, nil
}

// send puts src, a local file or folder, at target on the host and
// returns what copy registers. shown is the src the result names.
func (c *call) send(src, shown, target string) (map[string]any, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	mode, numeric, err := c.a.mode()
	if err != nil {
		return nil, err
	}
	putMode := mode
	if !numeric {
		putMode = transport.KeepMode // a symbolic mode is chmod's, on the host
	}
	if !c.a.boolean("force", true) {
		if fi.IsDir() {
			return nil, fmt.Errorf("force: no is supported for a file, not a folder")
		}
		if s, err := c.probe("e2c_stat " + quote(target)); err != nil {
			return nil, err
		} else if s.exists {
			return map[string]any{"changed": false, "dest": target, "src": shown}, nil
		}
	}
	asRoot, err := c.needsSudo()
	if err != nil {
		return nil, err
	}
	var changed, copied bool
	var final string
	var s hostStat
	if asRoot {
		s, err = c.sendAsRoot(src, target, mode, numeric)
		if err == nil {
			final, changed, copied = s.path, s.changed(), s.copied()
		}
	} else {
		var st transport.PutStats
		if st, err = c.r.Put(c.ctx, src, target, putMode); err != nil {
			return nil, fmt.Errorf("copy %s to %s: %w", src, target, err)
		}
		final = st.Path
		post := ""
		if !numeric || c.a.has("owner") || c.a.has("group") {
			post = c.attrsScript(final, fi.IsDir())
		}
		if !fi.IsDir() {
			post += "e2c_stat " + quote(final)
		}
		if post != "" {
			s, err = c.probe(post)
		}
		copied = st.Copied > 0
		changed = copied || st.Chmodded > 0 || s.changed()
	}
	if err != nil {
		return nil, err
	}
	if shown == "" {
		shown = target
	}
	res := map[string]any{"changed": changed, "dest": final, "src": shown}
	if fi.IsDir() {
		return res, nil
	}
	s.addFileKeys(res)
	sha, md, err := localSums(src)
	res["checksum"] = sha
	if copied {
		res["md5sum"] = md
	}
	if !copied {
		res["path"] = final
	}
	return res, err
}

// needsSudo reports whether a become task's files must be installed
// through sudo: when the login user is not root. It is asked once per
// host connection.
func (c *call) needsSudo() (bool, error) {
	if !c.t.Become {
		return false, nil
	}
	if v, ok := loginNotRoot.Load(c.r); ok {
		return v.(bool), nil
	}
	res, err := c.r.Run(c.ctx, transport.Command{Script: "id -u"})
	if err != nil {
		return false, fmt.Errorf("become: who logs in: %w", err)
	}
	notRoot := strings.TrimSpace(res.Stdout) != "0"
	loginNotRoot.Store(c.r, notRoot)
	return notRoot, nil
}

// loginNotRoot caches, per Runner, whether its login user is other than
// root.
var loginNotRoot sync.Map

// sendAsRoot copies for a become task whose login user is not root: the
// files go to a folder of the login user, then sudo installs those that
// differ (compared by content) and removes the folder. Every file is sent.
func (c *call) sendAsRoot(src, target string, mode fs.FileMode, numeric bool) (hostStat, error) {
	stage := path.Join(".e2c", "tmp", fmt.Sprintf("copy-%d-%d", time.Now().UnixNano(), jobSeq.Add(1)))
	staged := path.Join(stage, filepath.Base(src))
	stageMode := fs.FileMode(0o600)
	if mode == transport.SourceMode {
		stageMode = transport.SourceMode
	}
	if _, err := c.r.Put(c.ctx, src, staged, stageMode); err != nil {
		return hostStat{}, fmt.Errorf("copy %s: sending it to %s first: %w", src, stage, err)
	}
	modeArg := c.modeArg()
	switch {
	case mode == transport.SourceMode:
		modeArg = "source"
	case !numeric:
	case mode != transport.KeepMode:
		modeArg = fmt.Sprintf("%04o", mode.Perm())
	}
	script := fmt.Sprintf(`S=$(cd %s && pwd) || exit 1
trap 'rm -rf -- "$S"' EXIT
S=$S/%s D=%s M=%s
e2c_put1() {
  mkdir -p -- "$(dirname -- "$2")" || return 1
  if [ -f "$2" ] && cmp -s -- "$1" "$2"; then :; else e2c_write "$2" < "$1" || return 1; echo changed; echo copied; fi
  m=$M; [ "$m" = source ] && m=$(stat -c %%a -- "$1")
  e2c_attrs "$2" "$m" %s %s 0
}
if [ -d "$S" ]; then
  (cd "$S" && find . -type d) | while IFS= read -r d; do [ -d "$D/$d" ] || { mkdir -p -- "$D/$d" && echo changed; } || exit 1; done || exit 1
  (cd "$S" && find . -type f) | while IFS= read -r f; do e2c_put1 "$S/$f" "$D/$f" || exit $?; done || exit $?
else
  [ -d "$D" ] && D=$D/$(basename -- "$S")
  e2c_put1 "$S" "$D" || exit $?
  e2c_stat "$D"
fi
printf 'path %%s\n' "$D"`, quote(stage), quote(filepath.Base(src)), quote(target), quote(modeArg), quote(c.a.str("owner")), quote(c.a.str("group")))
	return c.probe(script)
}

// localSums are the SHA-1 and MD5 hex digests of a local file, the
// module results' checksum and md5sum, read once.
func localSums(name string) (sha, md string, err error) {
	f, err := os.Open(name)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	s, m := sha1.New(), md5.New()
	// WriteTo would lend io.Copy a buffer of 32 KiB per file.
	if _, err := io.CopyBuffer(io.MultiWriter(s, m), struct{ io.Reader }{f}, make([]byte, 4096)); err != nil {
		return "", "", err
	}
	return hex.EncodeToString(s.Sum(nil)), hex.EncodeToString(m.Sum(nil)), nil
}

// fetch stores the remote src at dest/<host>/<src path>, or with flat at
// dest (or dest/<name of src> when dest ends in "/"). The remote path can
// never make the file land outside dest. A local copy with the host's
// content (by SHA-1, as Ansible) is left alone.
func (c *call) fetch() (map[string]any, error) {
	src, dest := c.a.str("src"), c.a.str("dest")
	rel := c.host + "/" + strings.TrimPrefix(path.Clean("/"+src), "/")
	if c.a.boolean("flat", false) {
		rel = path.Base(src)
		if !strings.HasSuffix(dest, "/") {
			dest, rel = filepath.Dir(dest), filepath.Base(dest)
		}
	}
	local, err := c.e.plan.FetchPath(c.phase, dest, rel)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", src, err)
	}
	res, err := c.sh(fmt.Sprintf(`p=%s
[ -e "$p" ] || exit 3
[ -d "$p" ] && exit 4
sha1sum -- "$p"`, quote(src)))
	switch exitCode(err) {
	case 0:
	case 3:
		msg := "the remote file does not exist, not transferring, ignored"
		if c.a.boolean("fail_on_missing", true) {
			return failed(nil, "%s", msg)
		}
		c.e.logf(c.host, "fetch %s: %s", src, msg)
		return map[string]any{"changed": false, "file": src, "msg": msg}, nil
	case 4:
		return failed(map[string]any{"file": src}, "remote file is a directory, fetch cannot work on directories")
	default:
		return nil, fmt.Errorf("fetch %s: %w", src, hostError(res, err))
	}
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", src, err)
	}
	remote, _, _ := strings.Cut(res.Stdout, " ")
	if sum, md5sum, err := localSums(local); err == nil && sum == remote {
		return map[string]any{"changed": false, "checksum": sum, "dest": local, "file": src, "md5sum": md5sum}, nil
	}
	asRoot, err := c.needsSudo()
	if err != nil {
		return nil, err
	}
	if asRoot {
		err = c.fetchAsRoot(src, local)
	} else {
		err = c.r.Get(c.ctx, src, local)
	}
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", src, err)
	}
	sum, md5sum, err := localSums(local)
	if err != nil {
		return nil, err
	}
	if c.a.boolean("validate_checksum", true) && sum != remote {
		return failed(map[string]any{"dest": local}, "checksum mismatch (host %s, here %s)", remote, sum)
	}
	return map[string]any{"changed": true, "checksum": sum, "dest": local, "md5sum": md5sum, "remote_checksum": remote, "remote_md5sum": nil}, nil
}

// fetchAsRoot reads src through sudo into the local file dst, through a
// temporary file renamed over it; the folders it makes for dst are
// removed again if the read fails.
func (c *call) fetchAsRoot(src, dst string) error {
	data, found, err := c.readFile(src)
	if err == nil && !found {
		err = fs.ErrNotExist
	}
	if err != nil {
		return err
	}
	undo, err := mkdirAll(filepath.Dir(dst))
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".e2c-*")
	if err == nil {
		_, err = tmp.Write(data)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), dst)
		}
		os.Remove(tmp.Name())
	}
	if err != nil {
		undo()
	}
	return err
}

// mkdirAll makes dir and its missing parents; undo removes those it made,
// if they are still empty.
func mkdirAll(dir string) (undo func(), err error) {
	var made []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || !errors.Is(err, fs.ErrNotExist) || d == filepath.Dir(d) {
			break
		}
		made = append(made, d)
	}
	undo = func() {
		for _, d := range made {
			os.Remove(d)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		undo()
		return nil, err
	}
	return undo, nil
}
