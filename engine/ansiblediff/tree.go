package ansiblediff

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
)

// tree is what a folder holds, by path relative to it: the files left on a
// host, or in a working folder.
type tree map[string]entry

// entry is a file, a folder or a link, with its mode and owner.
type entry struct {
	kind  string // "file", "dir", "link"
	mode  fs.FileMode
	owner string // uid:gid
	data  string // a file's content, a link's target
}

func (e entry) String() string {
	s := fmt.Sprintf("%s %04o", e.kind, e.mode)
	if e.owner != "0:0" {
		s += " owner " + e.owner
	}
	switch e.kind {
	case "file":
		s += " " + short(e.data)
	case "link":
		s += " -> " + e.data
	}
	return s
}

// snapshot reads the tree under root; skip names files of root to leave
// out. A missing root is an error: an empty tree would compare as same.
func snapshot(root string, skip ...string) (tree, error) {
	t := tree{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if rel == "." || slices.Contains(skip, rel) {
			return nil
		}
		info, err := os.Lstat(path)
		if err != nil {
			return err
		}
		e := entry{mode: info.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			e.owner = fmt.Sprintf("%d:%d", st.Uid, st.Gid)
		}
		switch {
		case info.IsDir():
			e.kind = "dir"
		case info.Mode()&fs.ModeSymlink != 0:
			e.kind = "link"
			e.data, err = os.Readlink(path)
		case info.Mode().IsRegular():
			e.kind = "file"
			var data []byte
			data, err = os.ReadFile(path)
			e.data = string(data)
		default:
			e.kind = info.Mode().Type().String()
		}
		t[rel] = e
		return err
	})
	return t, err
}

// diffTrees lists how b (e2c) differs from a (Ansible), path by path;
// where names the tree in each line.
func diffTrees(where string, a, b tree) []string {
	var out []string
	for _, p := range unionKeys(a, b) {
		ea, ina := a[p]
		eb, inb := b[p]
		switch {
		case !inb:
			out = append(out, fmt.Sprintf("%s%s: ansible %s, e2c missing", where, p, ea))
		case !ina:
			out = append(out, fmt.Sprintf("%s%s: ansible missing, e2c %s", where, p, eb))
		case ea != eb:
			out = append(out, fmt.Sprintf("%s%s: ansible %s, e2c %s", where, p, ea, eb))
		}
	}
	return out
}

// short quotes s, cut to a length a line of the report can hold.
func short(s string) string {
	const max = 120
	if len(s) > max {
		return fmt.Sprintf("%q... (%d bytes)", s[:max], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// hostOpt is where a netns host's /opt lies on this machine.
func hostOpt(labState, host string) string {
	return filepath.Join(labState, "hosts", host, "opt")
}
