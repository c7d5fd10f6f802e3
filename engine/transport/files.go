package transport

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/e2c-dev/e2c/engine/agent"
	"golang.org/x/sync/errgroup"
)

// hostFS is the host side of Put and Get: this machine, an sftp client, or
// plain shell commands when the server has no sftp. Paths use slashes.
type hostFS interface {
	mkdir(ctx context.Context, dir string) error
	mkdirAll(ctx context.Context, dir string) error
	// write stores r as name, through a temporary file in name's directory
	// renamed over it, with permissions perm and modification time mtime.
	write(ctx context.Context, name string, r io.Reader, perm fs.FileMode, mtime time.Time) error
	// read copies the file name to w and returns its permissions.
	read(ctx context.Context, name string, w io.Writer) (fs.FileMode, error)
	chmod(ctx context.Context, name string, perm fs.FileMode) error
}

// hostEntry is what the host has at a path.
type hostEntry struct {
	mode fs.FileMode // type and permissions, as Lstat gives them
	size int64
	sum  string // a regular file's SHA-256 in hex; "" if it could not be read
}

// view is what a survey found on the host.
type view struct {
	have  map[string]hostEntry // by name; missing names are absent
	known bool                 // false when the host cannot tell (no stat -c or sha256sum): then every file is copied
	umask fs.FileMode          // of the host's commands, which new files get with KeepMode
}

// surveyor tells, in one round trip, what the host has at each of names
// (slash-separated, relative to root; "." is root itself).
type surveyor func(ctx context.Context, root string, names []string) (view, error)

// putParallel is how many files one Put hashes or transfers at once. Over
// sftp the files share one session, so this hides round trips, not adds
// sessions.
const putParallel = 8

// localFile is a file of the tree being put.
type localFile struct {
	rel  string // slash-separated, relative to the root surveyed
	path string
	info fs.FileInfo
}

// put copies src to dst: it surveys what the host already has (one round
// trip for the whole tree), skips the files whose content (SHA-256) and,
// for an explicit mode, permissions are already there, as Ansible's copy
// does, and opens the host's file system only if something is left to do.
// Sizes and modification times alone cannot tell: a file written again
// within the same second with the same size looks unchanged.
func put(ctx context.Context, survey surveyor, open func(func(hostFS) error) error, fromCache cacheCopier, src, dst string, mode fs.FileMode) (PutStats, error) {
	st := PutStats{Path: dst}
	fi, err := os.Stat(src)
	if err != nil {
		return st, err
	}
	root, dirs, files := dst, []string(nil), []localFile(nil)
	if fi.IsDir() {
		if dirs, files, err = walk(src); err != nil {
			return st, err
		}
	} else {
		if !fi.Mode().IsRegular() {
			return st, fmt.Errorf("put %s: not a regular file or directory", src)
		}
		root, dirs = path.Dir(dst), []string{"."}
		files = []localFile{{rel: path.Base(dst), path: src, info: fi}}
	}
	names := slices.Clone(dirs)
	for _, f := range files {
		names = append(names, f.rel)
	}
	v, err := survey(ctx, root, names)
	if err != nil {
		return st, err
	}
	if !fi.IsDir() && v.have[files[0].rel].mode.IsDir() {
		// A file put onto a directory goes into it, as with cp.
		st.Path = path.Join(dst, path.Base(src))
		root, files[0].rel = dst, path.Base(src)
		if v, err = survey(ctx, root, []string{".", files[0].rel}); err != nil {
			return st, err
		}
	}

	// Directories in walk order, parents first.
	var mkdirs []func(hostFS) error
	for _, d := range dirs {
		rd := path.Join(root, d)
		e, ok := v.have[d]
		switch {
		case !v.known || (d == "." && !ok):
			mkdirs = append(mkdirs, func(h hostFS) error { return h.mkdirAll(ctx, rd) })
		case !ok:
			mkdirs = append(mkdirs, func(h hostFS) error { return h.mkdir(ctx, rd) })
		case !e.mode.IsDir():
			return st, fmt.Errorf("put %s: not a directory on the host", rd)
		}
	}
	perm := func(f localFile) fs.FileMode {
		e, exists := v.have[f.rel]
		switch {
		case mode == SourceMode:
			return f.info.Mode().Perm()
		case mode != KeepMode:
			return mode.Perm()
		case exists && e.mode.IsRegular():
			return e.mode.Perm()
		case v.known:
			return 0o666 &^ v.umask
		}
		return 0o644
	}
	todo, chmods, err := changed(ctx, files, v.have, perm, mode != KeepMode)
	if err != nil {
		return st, err
	}
	st.Skipped = len(files) - len(todo) - len(chmods)
	if len(todo) == 0 && len(chmods) == 0 && len(mkdirs) == 0 {
		return st, nil
	}
	err = open(func(h hostFS) error {
		for _, mk := range mkdirs {
			if err := mk(h); err != nil {
				return fmt.Errorf("put: %w", err)
			}
		}
		for _, f := range chmods {
			if err := h.chmod(ctx, path.Join(root, f.rel), perm(f)); err != nil {
				return fmt.Errorf("put: %w", err)
			}
			st.Chmodded++
		}
		if fromCache != nil {
			var err error
			if todo, err = copyCached(ctx, fromCache, todo, root, perm, &st); err != nil {
				return err
			}
		}
		var mu sync.Mutex
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(putParallel)
		for _, f := range todo {
			g.Go(func() error {
				if err := putFile(gctx, h, f, path.Join(root, f.rel), perm(f)); err != nil {
					return err
				}
				mu.Lock()
				st.Copied++
				st.Bytes += f.info.Size()
				mu.Unlock()
				return nil
			})
		}
		return g.Wait()
	})
	if err != nil && ctx.Err() != nil {
		return st, ctx.Err()
	}
	return st, err
}

// changed returns the files the host lacks (missing, or of other size or
// content) and, when permsCount, those it has with other permissions
// than perm gives. Candidates are hashed here in parallel.
func changed(ctx context.Context, files []localFile, have map[string]hostEntry, perm func(localFile) fs.FileMode, permsCount bool) (todo, chmods []localFile, err error) {
	same := make([]bool, len(files))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(putParallel)
	for i, f := range files {
		e, ok := have[f.rel]
		if !ok || !e.mode.IsRegular() || e.size != f.info.Size() || e.sum == "" {
			continue
		}
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			var sum string
			var err error
			if f.info.Size() >= BlobMin {
				sum, err = memoSum(f) // read once for all hosts
			} else {
				sum, err = fileSum(f.path)
			}
			same[i] = sum == e.sum
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	for i, f := range files {
		switch {
		case !same[i]:
			todo = append(todo, f)
		case permsCount && have[f.rel].mode.Perm() != perm(f):
			chmods = append(chmods, f)
		}
	}
	return todo, chmods, nil
}

// BlobDir is the cache of files spread to a host ahead of the copies that
// need them (engine/spread), relative to the login directory: each file
// is named by its SHA-256, checked when it arrived.
const BlobDir = ".cache/e2c/blobs"

// BlobMin is the size from which Put looks for a file in the host's
// BlobDir before sending it, unless the file is in a bundle (Bundle):
// smaller ones are sent faster than looked for.
const BlobMin = 1 << 20

// cacheCopier copies files from the host's BlobDir (agent.OpCache) and
// tells which it had.
type cacheCopier func(ctx context.Context, files []agent.CacheFile, bundles []string) ([]bool, error)

// copyCached copies the files of todo that the host may have in BlobDir,
// spread there alone or in a bundle, from there in one round trip, and
// returns those left to send.
func copyCached(ctx context.Context, fromCache cacheCopier, todo []localFile, root string, perm func(localFile) fs.FileMode, st *PutStats) ([]localFile, error) {
	var files []agent.CacheFile
	var at []int // the files' indexes in todo
	var bundles []string
	for i, f := range todo {
		var sum string
		if m, ok := bundlesOf(f); ok {
			sum = m.sum
			for _, b := range m.bundles {
				if !slices.Contains(bundles, b) {
					bundles = append(bundles, b)
				}
			}
		} else if f.info.Size() >= BlobMin {
			var err error
			if sum, err = memoSum(f); err != nil {
				return nil, err
			}
		} else {
			continue
		}
		files = append(files, agent.CacheFile{Blob: path.Join(BlobDir, sum), Dst: path.Join(root, f.rel), Perm: perm(f), Mtime: f.info.ModTime().UnixNano()})
		at = append(at, i)
	}
	if len(files) == 0 {
		return todo, nil
	}
	copied, err := fromCache(ctx, files, bundles)
	if err != nil {
		return nil, fmt.Errorf("put %s from the host's cache: %w", root, err)
	}
	done := make([]bool, len(todo))
	for k, ok := range copied {
		if ok {
			done[at[k]] = true
			st.Copied++
			st.FromCache++
		}
	}
	var left []localFile
	for i, f := range todo {
		if !done[i] {
			left = append(left, f)
		}
	}
	return left, nil
}

// Blob is where a host's BlobDir keeps the local file name, relative to
// the login directory.
func Blob(name string) (string, error) {
	sum, err := localSum(name)
	return path.Join(BlobDir, sum), err
}

// localSum is the SHA-256 of the local file name, memoized.
func localSum(name string) (string, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return "", err
	}
	return memoSum(localFile{path: name, info: fi})
}

// sums are the SHA-256 of the large local files put, by path, size and
// modification time (to the nanosecond: a coarser file system could hide
// a rewrite, which is why small files are hashed each time): one file put
// to a thousand hosts is read once.
var sums sync.Map

// memoKey names a version of a local file in sums and bundled.
type memoKey struct {
	path  string
	size  int64
	mtime time.Time
}

func keyOf(f localFile) memoKey { return memoKey{f.path, f.info.Size(), f.info.ModTime()} }

func memoSum(f localFile) (string, error) {
	k := keyOf(f)
	if sum, ok := sums.Load(k); ok {
		return sum.(string), nil
	}
	sum, err := fileSum(f.path)
	if err == nil {
		sums.Store(k, sum)
	}
	return sum, err
}

// fileSum is the SHA-256 of a local file, in hex.
func fileSum(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// putFile writes f to dst on the host.
func putFile(ctx context.Context, h hostFS, f localFile, dst string, perm fs.FileMode) error {
	r, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := h.write(ctx, dst, r, perm, f.info.ModTime()); err != nil {
		return fmt.Errorf("put %s: %w", dst, err)
	}
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

// survey looks at names under root, hashing the regular files.
func (l localFS) survey(ctx context.Context, root string, names []string) (view, error) {
	v := view{have: map[string]hostEntry{}, known: true, umask: processUmask()}
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return view{}, err
		}
		p := filepath.Join(l.abs(root), filepath.FromSlash(n))
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		e := hostEntry{mode: fi.Mode(), size: fi.Size()}
		if fi.Mode().IsRegular() {
			e.sum, _ = fileSum(p)
		}
		v.have[n] = e
	}
	return v, nil
}

// processUmask reads this process's umask from /proc (Linux 4.7 and
// later), which setting it to read it would change for every thread;
// 022 where /proc does not tell.
func processUmask() fs.FileMode {
	data, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return fs.FileMode(m)
			}
		}
	}
	return 0o022
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

func (l localFS) chmod(_ context.Context, name string, perm fs.FileMode) error {
	return os.Chmod(l.abs(name), perm)
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
