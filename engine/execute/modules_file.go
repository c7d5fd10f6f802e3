package execute

import (
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// file sets what a path is, as Ansible's file module does: state file
// (attributes of an existing file), directory (made with its parents,
// each given the attributes), link, hard, touch or absent; without state,
// what the path is now (a missing one: file, or directory with recurse).
func (c *call) file() (map[string]any, error) {
	p, state, src := c.a.str("path"), c.a.str("state"), c.a.str("src")
	follow, force, recurse := c.a.boolean("follow", true), c.a.boolean("force", false), c.a.boolean("recurse", false)
	cur, err := c.probe("e2c_stat " + quote(p))
	if err != nil {
		return nil, err
	}
	if state != "link" && state != "absent" && cur.mode.IsDir() && src != "" {
		p = path.Join(p, path.Base(src))
		if cur, err = c.probe("e2c_stat " + quote(p)); err != nil {
			return nil, err
		}
	}
	prev := cur.state()
	switch {
	case state != "":
	case prev != "absent":
		state = prev
	case recurse:
		state = "directory"
	default:
		state = "file"
	}
	if recurse && state != "directory" {
		return c.failedAt(map[string]any{"path": p}, "recurse option requires state to be 'directory'")
	}
	if src != "" && state != "link" && state != "hard" {
		return c.failedAt(map[string]any{"path": p}, "src option requires state to be 'link' or 'hard'")
	}
	// Links are followed for file and directory: their target is changed.
	if follow && prev == "link" && (state == "file" || state == "directory") {
		p = cur.realPath
		if cur, err = c.probe("e2c_stat " + quote(p)); err != nil {
			return nil, err
		}
		prev = cur.state()
	}
	switch state {
	case "absent":
		res := map[string]any{"path": p, "changed": prev != "absent", "state": "absent"}
		if prev != "absent" {
			if _, err := c.probe("rm -rf -- " + quote(p)); err != nil {
				return c.failedAt(res, "rmtree failed: %v", err)
			}
		}
		return res, nil
	case "file":
		if prev != "file" && prev != "hard" {
			return c.failedAt(map[string]any{"path": p, "state": prev}, "file (%s) is %s, cannot continue", p, prev)
		}
		return c.fileDone(map[string]any{"path": p}, p, false, "")
	case "directory":
		switch prev {
		case "absent":
			// Each folder made gets the attributes, as mkdir -p with them.
			var b strings.Builder
			for _, d := range parents(p) {
				fmt.Fprintf(&b, "if ! [ -e %s ]; then mkdir -- %s || exit 1; echo changed; %s fi\n", quote(d), quote(d), c.attrsScript(d, false))
			}
			return c.fileDone(map[string]any{"path": p}, p, false, b.String())
		case "directory":
			return c.fileDone(map[string]any{"path": p}, p, recurse, "")
		}
		return c.failedAt(map[string]any{"path": p}, "%s already exists as a %s", p, prev)
	case "touch":
		return c.fileDone(map[string]any{"dest": p}, p, false, fmt.Sprintf("touch -- %s || exit 1; echo changed", quote(p)))
	case "link":
		return c.link(p, src, cur, follow, force)
	case "hard":
		return c.hardLink(p, src, cur, force)
	}
	return nil, fmt.Errorf("file: unknown state %q", state)
}

// fileDone runs action (which prints "changed" when it changes
// something), then applies the task's attributes to p and returns res
// with changed and what Ansible tells about p.
func (c *call) fileDone(res map[string]any, p string, recurse bool, action string) (map[string]any, error) {
	script := action + "\n" + c.attrsScript(p, recurse) + "e2c_stat " + quote(p)
	s, err := c.probe(script)
	res["changed"] = s.changed()
	if err != nil {
		return c.failedAt(map[string]any{"path": p, "changed": false}, "%v", err)
	}
	s.addFileKeys(res)
	return res, nil
}

// failedAt fails a file task as Ansible does, its result telling what the
// path (or dest) it names is.
func (c *call) failedAt(res map[string]any, format string, a ...any) (map[string]any, error) {
	p, ok := res["path"].(string)
	if !ok {
		p, ok = res["dest"].(string)
	}
	if ok {
		if s, err := c.probe("e2c_stat " + quote(p)); err == nil {
			s.addFileKeys(res)
		}
	}
	return failed(res, format, a...)
}

// parents lists p and the folders above it, outermost first.
func parents(p string) []string {
	var out []string
	for d := path.Clean(p); d != "/" && d != "."; d = path.Dir(d) {
		out = append([]string{d}, out...)
	}
	return out
}

// link makes p a symbolic link to src, as Ansible's file module does.
func (c *call) link(p, src string, cur hostStat, follow, force bool) (map[string]any, error) {
	prev := cur.state()
	if src == "" && follow && cur.exists && prev == "link" {
		src = cur.target // an existing link keeps its target
	}
	rel := path.Dir(p)
	if prev == "directory" {
		rel = p
	}
	res := map[string]any{"dest": p, "src": src}
	if src != "" {
		abs := src
		if !path.IsAbs(src) {
			abs = path.Join(rel, src)
		}
		target, err := c.probe("e2c_stat -L " + quote(abs))
		if err != nil {
			return nil, err
		}
		if !force && !target.exists {
			return c.failedAt(map[string]any{"path": p, "src": src}, `src file does not exist, use "force=yes" if you really want to create the link: %s`, abs)
		}
	}
	switch {
	case prev == "directory" && !force, (prev == "file" || prev == "hard") && !force:
		return c.failedAt(map[string]any{"path": p}, "refusing to convert from %s to symlink for %s", prev, p)
	case prev != "link" && src == "":
		return c.failedAt(map[string]any{"path": p}, "src is required for creating new symlinks")
	}
	action := ""
	if prev != "link" || cur.target != src {
		tmp := path.Join(path.Dir(p), fmt.Sprintf(".e2c-link-%d", jobSeq.Add(1)))
		action = fmt.Sprintf("ln -s -- %s %s && mv -f -T -- %s %s || { rm -f -- %s; exit 1; }\necho changed", quote(src), quote(tmp), quote(tmp), quote(p), quote(tmp))
		switch prev {
		case "absent":
			action = fmt.Sprintf("ln -s -- %s %s || exit 1\necho changed", quote(src), quote(p))
		case "directory":
			action = fmt.Sprintf(`[ -z "$(ls -A -- %s)" ] || { echo "msg the directory %s is not empty, refusing to convert it"; exit 5; }
rmdir -- %s || exit 1
`, quote(p), p, quote(p)) + action
		}
	}
	script := action + "\n"
	if c.modeArg() != "" || c.a.has("owner") || c.a.has("group") {
		script += fmt.Sprintf("if [ -e %s ]; then %s fi\n", quote(p), c.attrsScript(p, false))
	}
	s, err := c.probe(script + "e2c_stat " + quote(p))
	res["changed"] = s.changed()
	if err != nil {
		return c.failedAt(res, "Error while linking: %v", err)
	}
	s.addFileKeys(res)
	return res, nil
}

// hardLink makes p a hard link to src, as Ansible's file module does.
func (c *call) hardLink(p, src string, cur hostStat, force bool) (map[string]any, error) {
	prev := cur.state()
	if prev != "hard" && src == "" {
		return c.failedAt(nil, "src is required for creating new hardlinks")
	}
	res := map[string]any{"dest": p, "src": src}
	if src == "" {
		res["src"] = nil
		return c.fileDone(res, p, false, "")
	}
	from, err := c.probe("e2c_stat -L " + quote(src))
	if err != nil {
		return nil, err
	}
	if !from.exists {
		return c.failedAt(map[string]any{"dest": p, "src": src}, "src does not exist")
	}
	link := false
	switch prev {
	case "absent":
		link = true
	case "link":
		link = cur.target != src
	case "hard", "file", "directory":
		link = cur.inode != from.inode || cur.dev != from.dev
		if link && !force {
			what := "different hard link"
			if prev != "hard" {
				what = prev
			}
			return c.failedAt(map[string]any{"dest": p, "src": src}, "Cannot link, %s exists at destination", what)
		}
	}
	action := ""
	if link {
		tmp := path.Join(path.Dir(p), fmt.Sprintf(".e2c-link-%d", jobSeq.Add(1)))
		action = fmt.Sprintf("ln -- %s %s && mv -f -T -- %s %s || { rm -f -- %s; exit 1; }\necho changed", quote(src), quote(tmp), quote(tmp), quote(p), quote(tmp))
		if prev == "absent" {
			action = fmt.Sprintf("ln -- %s %s || exit 1\necho changed", quote(src), quote(p))
		}
	}
	return c.fileDone(res, p, false, action)
}

// stat tells what a path of the host is, with Ansible's keys: exists,
// isdir, isreg, islnk, mode, uid, size, mtime, checksum (SHA-1 unless
// checksum_algorithm), mimetype and charset (with the host's file), ...
func (c *call) stat() (map[string]any, error) {
	p := c.a.str("path")
	flag := ""
	if c.a.boolean("follow", false) {
		flag = "-L "
	}
	algo := c.a.str("checksum_algorithm")
	if algo == "" {
		algo = "sha1"
	}
	switch algo {
	case "md5", "sha1", "sha224", "sha256", "sha384", "sha512":
	default:
		return nil, fmt.Errorf("stat: checksum_algorithm %q is not one of md5, sha1, sha224, sha256, sha384, sha512", algo)
	}
	script := "e2c_stat " + flag + quote(p) + "\n"
	if c.a.boolean("get_checksum", true) {
		regular := fmt.Sprintf("[ -f %s ]", quote(p))
		if flag == "" {
			regular += fmt.Sprintf(" && ! [ -L %s ]", quote(p))
		}
		script += fmt.Sprintf("%s && [ -r %s ] && printf 'sum %%s\\n' \"$(%ssum -- %s | cut -d' ' -f1)\"\n", regular, quote(p), algo, quote(p))
	}
	if c.a.boolean("get_mime", true) {
		// As Ansible: file(1) on the path itself, links not followed.
		script += fmt.Sprintf("command -v file >/dev/null 2>&1 && printf 'mime %%s %%s\\n' \"$(file -b --mime-type -- %s)\" \"$(file -b --mime-encoding -- %s)\"\n", quote(p), quote(p))
	}
	s, err := c.probe(script + "exit 0")
	if err != nil {
		return nil, err
	}
	if !s.exists {
		return map[string]any{"changed": false, "stat": map[string]any{"exists": false}}, nil
	}
	perm := s.perm
	st := map[string]any{
		"exists": true, "path": p, "mode": fmt.Sprintf("%04o", s.perm),
		"isdir": s.mode.IsDir(), "isreg": s.mode.IsRegular(), "islnk": s.mode&fs.ModeSymlink != 0,
		"isblk": s.mode&fs.ModeDevice != 0 && s.mode&fs.ModeCharDevice == 0, "ischr": s.mode&fs.ModeCharDevice != 0,
		"isfifo": s.mode&fs.ModeNamedPipe != 0, "issock": s.mode&fs.ModeSocket != 0,
		"uid": s.uid, "gid": s.gid, "pw_name": s.owner, "gr_name": s.group,
		"size": s.size, "inode": s.inode, "dev": s.dev, "nlink": s.nlink, "blocks": s.blocks, "block_size": s.bsize,
		"atime": s.atime, "mtime": s.mtime, "ctime": s.ctime, "device_type": s.major<<8 | s.minor,
		"isuid": perm&0o4000 != 0, "isgid": perm&0o2000 != 0,
		"rusr": perm&0o400 != 0, "wusr": perm&0o200 != 0, "xusr": perm&0o100 != 0,
		"rgrp": perm&0o40 != 0, "wgrp": perm&0o20 != 0, "xgrp": perm&0o10 != 0,
		"roth": perm&0o4 != 0, "woth": perm&0o2 != 0, "xoth": perm&0o1 != 0,
		"readable": s.readable, "writeable": s.writeable, "executable": s.executable,
	}
	if s.mode&fs.ModeSymlink != 0 {
		st["lnk_target"], st["lnk_source"] = s.target, s.realPath
	}
	if s.sum != "" {
		st["checksum"] = s.sum
	}
	if s.mime != "" {
		st["mimetype"], st["charset"] = s.mime, s.charset
	}
	return map[string]any{"changed": false, "stat": st}, nil
}
