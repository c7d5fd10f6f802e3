package execute

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/results"
)

// unarchive unpacks a tar (plain, gzip, bzip2, xz) or zip archive into an
// existing folder of the host with the host's tar or unzip, as Ansible's
// unarchive: src is a file of this machine (inside ARTIFACTS_DIR), copied
// first, or with remote_src one of the host. Nothing is unpacked when the
// folder already holds the archive's files as they are in it (tar --diff;
// for zip, each file compared), or when creates exists.
func (c *call) unarchive() (map[string]any, error) {
	src, dest := c.a.str("src"), c.a.str("dest")
	if creates := c.a.str("creates"); creates != "" {
		s, err := c.probe("e2c_stat " + quote(creates))
		if err != nil {
			return nil, err
		}
		if s.exists {
			msg := "skipped, since " + creates + " exists"
			c.e.logf(c.host, "%s", msg)
			return map[string]any{"changed": false, "msg": msg, "skipped": true}, nil
		}
	}
	remote := src
	if !c.a.boolean("remote_src", false) {
		local, err := c.e.plan.Source("unarchive", src)
		if err != nil {
			return nil, fmt.Errorf("unarchive: %w", err)
		}
		if st, err := os.Stat(local); err != nil || !st.Mode().IsRegular() {
			return failed(nil, "Could not find or access '%s' on the Ansible Controller.", src)
		}
		tmp := path.Join(".e2c", "tmp", fmt.Sprintf("unarchive-%d-%d", time.Now().UnixNano(), jobSeq.Add(1)))
		remote = path.Join(tmp, filepath.Base(local))
		if _, err := c.r.Put(c.ctx, local, remote, 0o600); err != nil {
			return nil, fmt.Errorf("unarchive: copying %s: %w", src, err)
		}
		defer c.r.Run(c.ctx, transport.Command{Script: "rm -rf -- " + quote(tmp)})
		remote = "$(cd " + quote(tmp) + " && pwd)/" + quote(filepath.Base(local))
	} else {
		remote = quote(remote)
	}
	script := fmt.Sprintf(`s=%s d=%s
[ -f "$s" ] || { echo "msg Source '$s' does not exist"; exit 5; }
[ -d "$d" ] || { echo "msg dest '$d' must be an existing dir"; exit 5; }
h=
if command -v unzip >/dev/null 2>&1 && unzip -Z1 "$s" >/dev/null 2>&1; then h=ZipArchive
else for f in z:TgzArchive :TarArchive j:TarBzipArchive J:TarXzArchive; do
  tar -t${f%%%%:*}f "$s" >/dev/null 2>&1 && { h=${f#*:}; z=${f%%%%:*}; break; }
done; fi
[ -n "$h" ] || { echo "msg Failed to find handler for \"$s\". Make sure the required command to extract the file is installed."; exit 5; }
echo "handler $h"
same=1
if [ $h = ZipArchive ]; then
  unzip -Z1 "$s" | { while IFS= read -r e; do
      case $e in */) [ -d "$d/$e" ] || exit 1 ;; *) unzip -p "$s" "$e" | cmp -s - "$d/$e" || exit 1 ;; esac
    done; } || same=0
  cmd="unzip -o $s -d $d"
else
  tar -C "$d" -d${z}f "$s" >/dev/null 2>&1 || same=0
  cmd="tar --extract -C $d ${z:+-$z }-f $s"
fi
if [ $same = 0 ]; then
  echo changed
  if [ $h = ZipArchive ]; then out=$(unzip -o "$s" -d "$d" 2>/tmp/e2c-unarchive.$$); rc=$?
  else out=$(tar --extract -C "$d" ${z:+-$z} -f "$s" 2>/tmp/e2c-unarchive.$$); rc=$?; fi
  err=$(cat /tmp/e2c-unarchive.$$); rm -f /tmp/e2c-unarchive.$$
  printf 'cmd %%s\n' "$cmd"; printf 'rc %%s\n' "$rc"
  printf '%%s\n' "$out" | sed 's/^/out /'; printf '%%s\n' "$err" | sed 's/^/err /'
  [ $rc = 0 ] || { echo "msg failed to unpack $s to $d"; exit 5; }
fi
if [ -n %s ] || [ -n %s ] || [ -n %s ]; then
  if [ $h = ZipArchive ]; then unzip -Z1 "$s"; else tar -t${z}f "$s"; fi | while IFS= read -r e; do
    %s
  done
fi
e2c_stat "$d"`, remote, quote(dest), quote(c.modeArg()), quote(c.a.str("owner")), quote(c.a.str("group")), strings.TrimSpace(c.attrsFor(`"$d/$e"`, false)))
	s, err := c.probe(script)
	res := map[string]any{"dest": dest, "src": src, "changed": s.changed()}
	var cmd string
	var rc int
	var out, errOut []string
	for _, l := range s.lines {
		k, v, _ := strings.Cut(l, " ")
		switch k {
		case "handler":
			res["handler"] = v
		case "cmd":
			cmd = v
		case "rc":
			fmt.Sscan(v, &rc)
		case "out":
			out = append(out, v)
		case "err":
			errOut = append(errOut, v)
		}
	}
	if cmd != "" {
		res["extract_results"] = map[string]any{"cmd": cmd, "rc": rc, "out": strings.TrimSpace(strings.Join(out, "\n")), "err": strings.TrimSpace(strings.Join(errOut, "\n"))}
	}
	if err != nil {
		if cmd == "" {
			res = nil // Ansible's result of a check that failed says no more
		}
		return failed(res, "%v", err)
	}
	s.addFileKeys(res)
	return res, nil
}

// synchronize mirrors a folder (or file) between this machine and the
// host, as Ansible's synchronize does with rsync -a: in push mode (the
// default) src of this machine (inside ARTIFACTS_DIR) goes to dest on the
// host through e2c's own copy (content compared by SHA-256, permissions
// and modification times kept); in pull mode src of the host comes into
// dest on this machine (inside the run folder, as fetch). A src ending in
// "/" copies the folder's contents, without it the folder itself goes
// under dest. delete removes what the other side lacks.
func (c *call) synchronize() (map[string]any, error) {
	if c.a.str("mode") == "pull" {
		return c.pull()
	}
	written, dest := c.a.str("src"), c.a.str("dest")
	src, err := c.e.plan.Source("synchronize", written)
	if err != nil {
		return nil, fmt.Errorf("synchronize: %w", err)
	}
	st, err := os.Stat(src)
	if err != nil {
		return failed(map[string]any{"rc": 23}, "rsync: link_stat %q failed: No such file or directory", written)
	}
	target := dest
	if st.IsDir() && !strings.HasSuffix(written, "/") {
		target = path.Join(dest, filepath.Base(src))
	}
	stats, err := c.r.Put(c.ctx, src, target, transport.SourceMode)
	if err != nil {
		return nil, fmt.Errorf("synchronize %s to %s: %w", written, target, err)
	}
	changed := stats.Copied > 0
	var lines []any
	if st.IsDir() && c.a.boolean("delete", false) {
		var keep []string
		if err := filepath.WalkDir(src+"/", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			keep = append(keep, "./"+filepath.ToSlash(rel))
			return nil
		}); err != nil {
			return nil, err
		}
		s, err := c.probe(fmt.Sprintf(`cd -- %s || exit 1
k=$(mktemp) || exit 1; trap 'rm -f -- "$k"' EXIT
%s > "$k"
find . -mindepth 1 -depth | while IFS= read -r f; do
  grep -qxF -- "$f" "$k" || { rm -rf -- "$f" && printf 'deleting %%s\n' "${f#./}"; }
done`, quote(target), printBytes([]byte(strings.Join(keep, "\n")+"\n"))))
		if err != nil {
			return nil, fmt.Errorf("synchronize: delete: %w", err)
		}
		for _, l := range s.lines {
			lines = append(lines, l)
		}
		changed = changed || len(lines) > 0
	}
	return map[string]any{"changed": changed, "rc": 0, "msg": "", "stdout_lines": lines,
		"cmd": fmt.Sprintf("e2c copy %s to %s (%d files sent, %d already there)", written, target, stats.Copied, stats.Skipped)}, nil
}

// pull copies src of the host into dest here: a tar stream of the host's
// tar, unpacked here with every path kept inside dest.
func (c *call) pull() (map[string]any, error) {
	src, dest := c.a.str("src"), c.a.str("dest")
	root, err := c.e.plan.FetchPath(c.phase, dest, ".e2c-check")
	if err != nil {
		return nil, fmt.Errorf("synchronize: %w", err)
	}
	root = filepath.Dir(root)
	dir, name := path.Dir(strings.TrimSuffix(src, "/")), path.Base(src)
	if strings.HasSuffix(src, "/") {
		dir, name = src, "."
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	var n int
	go func() {
		n, err = untar(pr, root)
		pr.CloseWithError(err)
		done <- err
	}()
	res, runErr := c.r.Run(c.ctx, transport.Command{Script: fmt.Sprintf("cd -- %s && tar -cf - -- %s", quote(dir), quote(name)),
		Env: c.t.Environment, Sudo: c.t.Become, Stdout: pw})
	pw.Close()
	uerr := <-done
	if runErr != nil {
		return nil, fmt.Errorf("synchronize: %w", hostError(res, runErr))
	}
	if uerr != nil {
		return nil, fmt.Errorf("synchronize: %w", uerr)
	}
	return map[string]any{"changed": n > 0, "rc": 0, "msg": "", "stdout_lines": []any{},
		"cmd": fmt.Sprintf("e2c tar of %s on the host into %s", src, root)}, nil
}

// untar unpacks a tar stream into root, refusing paths that would leave
// it and links, and returns how many files it wrote anew or changed.
func untar(r io.Reader, root string) (int, error) {
	tr := tar.NewReader(r)
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if name == "" {
			continue
		}
		p, err := results.Path(root, name)
		if err != nil {
			return n, err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return n, err
			}
		case tar.TypeReg:
			data, err := io.ReadAll(io.LimitReader(tr, h.Size))
			if err != nil {
				return n, err
			}
			if old, err := os.ReadFile(p); err == nil && string(old) == string(data) {
				continue
			}
			if err := results.WriteFile(root, name, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
				return n, err
			}
			os.Chmod(p, fs.FileMode(h.Mode).Perm())
			os.Chtimes(p, h.ModTime, h.ModTime)
			n++
		default:
			return n, fmt.Errorf("%s: links and special files are not pulled", h.Name)
		}
	}
}
