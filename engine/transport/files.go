package transport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// hostFS is the host side of Put and Get: this machine, an sftp client, or
// plain shell commands when the server has no sftp. Paths use slashes.
type hostFS interface {
	stat(ctx context.Context, name string) (fs.FileInfo, error)
	// list returns the entries of dir by name, or an error wrapping
	// fs.ErrNotExist when dir is missing. One call per directory is what
	// keeps the skip check cheap.
	list(ctx context.Context, dir string) (map[string]fs.FileInfo, error)
	mkdir(ctx context.Context, dir string) error
	mkdirAll(ctx context.Context, dir string) error
	// write stores r as name, through a temporary file in name's directory
	// renamed over it, with permissions perm and modification time mtime.
	write(ctx context.Context, name string, r io.Reader, perm fs.FileMode, mtime time.Time) error
	// read copies the file name to w and returns its permissions.
	read(ctx context.Context, name string, w io.Writer) (fs.FileMode, error)
}

// putParallel is how many files one Put transfers at once. Over sftp the
// files share one session, so this hides round trips, not adds sessions.
const putParallel = 8

// localFile is a file of the tree being put.
type localFile struct {
	rel  string // slash-separated, relative to src
	path string
	info fs.FileInfo
}

func put(ctx context.Context, h hostFS, src, dst string, mode fs.FileMode) (PutStats, error) {
	var st PutStats
	fi, err := os.Stat(src)
	if err != nil {
		return st, err
	}
	if !fi.IsDir() {
		if !fi.Mode().IsRegular() {
			return st, fmt.Errorf("put %s: not a regular file or directory", src)
		}
		have, err := h.stat(ctx, dst)
		if errors.Is(err, fs.ErrNotExist) {
			have, err = nil, h.mkdirAll(ctx, path.Dir(dst))
		}
		if err != nil {
			return st, err
		}
		return st, putFile(ctx, h, &st, &sync.Mutex{}, localFile{path: src, info: fi}, dst, have, mode)
	}

	dirs, files, err := walk(src)
	if err != nil {
		return st, err
	}
	// Directories in walk order, parents first: each is listed once (or
	// created), and the listings decide which files to skip.
	lists := make(map[string]map[string]fs.FileInfo, len(dirs))
	for _, d := range dirs {
		rd := path.Join(dst, d)
		var l map[string]fs.FileInfo
		if d == "." {
			l, err = h.list(ctx, rd)
			if errors.Is(err, fs.ErrNotExist) {
				l, err = nil, h.mkdirAll(ctx, rd)
			}
		} else if e, ok := lists[path.Dir(d)][path.Base(d)]; ok && e.IsDir() {
			l, err = h.list(ctx, rd)
		} else {
			err = h.mkdir(ctx, rd)
		}
		if err != nil {
			return st, fmt.Errorf("put %s: %w", rd, err)
		}
		lists[d] = l
	}

	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(putParallel)
	for _, f := range files {
		have := lists[path.Dir(f.rel)][path.Base(f.rel)]
		g.Go(func() error {
			return putFile(gctx, h, &st, &mu, f, path.Join(dst, f.rel), have, mode)
		})
	}
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		return st, err
	}
	return st, nil
}

// putFile copies f to dst unless have, the file already there, is the same.
func putFile(ctx context.Context, h hostFS, st *PutStats, mu *sync.Mutex, f localFile, dst string, have fs.FileInfo, mode fs.FileMode) error {
	perm := f.info.Mode().Perm()
	if mode != 0 {
		perm = mode.Perm()
	}
	mtime := f.info.ModTime()
	if have != nil && have.Mode().IsRegular() && have.Size() == f.info.Size() &&
		have.ModTime().Unix() == mtime.Unix() && have.Mode().Perm() == perm {
		mu.Lock()
		st.Skipped++
		mu.Unlock()
		return nil
	}
	r, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := h.write(ctx, dst, r, perm, mtime); err != nil {
		return fmt.Errorf("put %s: %w", dst, err)
	}
	mu.Lock()
	st.Copied++
	st.Bytes += f.info.Size()
	mu.Unlock()
	return nil
}

// walk lists the directories (parents first, "." included) and regular files
// under root, following links to files only, so a link loop cannot trap it.
func walk(root string) (dirs []string, files []localFile, err error) {
	if !os.IsPathSeparator(root[len(root)-1]) {
		root += string(filepath.Separator) // so that a link to a directory is followed
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			dirs = append(dirs, rel)
			return nil
		}
		info, err := os.Stat(p) // follows a link
		if err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			files = append(files, localFile{rel: rel, path: p, info: info})
		}
		return nil
	})
	return dirs, files, err
}

// get copies the host file src to the local file dst atomically.
func get(ctx context.Context, h hostFS, src, dst string) error {
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".e2c-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	perm, err := h.read(ctx, src, tmp)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("get %s: %w", src, err)
	}
	return os.Rename(tmp.Name(), dst)
}

// tempName returns a fresh name next to name for an upload in progress.
func tempName(name string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return path.Join(path.Dir(name), "."+path.Base(name)+".e2c-"+hex.EncodeToString(b[:]))
}

// localFS is the host side of the local runner: paths are relative to root.
type localFS struct{ root string }

func (l localFS) abs(name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(l.root, name)
}

func (l localFS) stat(_ context.Context, name string) (fs.FileInfo, error) {
	return os.Stat(l.abs(name))
}

func (l localFS) list(_ context.Context, dir string) (map[string]fs.FileInfo, error) {
	es, err := os.ReadDir(l.abs(dir))
	if err != nil {
		return nil, err
	}
	m := make(map[string]fs.FileInfo, len(es))
	for _, e := range es {
		if fi, err := e.Info(); err == nil {
			m[e.Name()] = fi
		}
	}
	return m, nil
}

func (l localFS) mkdir(_ context.Context, dir string) error { return os.Mkdir(l.abs(dir), 0o755) }

func (l localFS) mkdirAll(_ context.Context, dir string) error {
	return os.MkdirAll(l.abs(dir), 0o755)
}

func (l localFS) write(ctx context.Context, name string, r io.Reader, perm fs.FileMode, mtime time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name = l.abs(name)
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".e2c-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	err = f.Chmod(perm) // before the data, so a secret is never readable by others
	if err == nil {
		_, err = io.Copy(f, r)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(f.Name(), mtime, mtime)
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

func (l localFS) read(_ context.Context, name string, w io.Writer) (fs.FileMode, error) {
	f, err := os.Open(l.abs(name))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(w, f)
	return fi.Mode().Perm(), err
}
