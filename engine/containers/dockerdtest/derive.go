package dockerdtest

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path"
	"testing"
)

// Derive writes to dst a copy of src, an archive of one image as Image
// builds them, whose image config edit changed (its architecture, or its
// "config"'s Entrypoint and Cmd), tagged tag alone: an image that stands
// in for another without a build. Its layers are src's, copied as they
// stream; the config is named by its new digest, so that the daemon takes
// it for a new image.
func Derive(t testing.TB, src, dst, tag string, edit func(config map[string]any)) {
	t.Helper()
	if err := derive(src, dst, tag, edit); err != nil {
		t.Fatalf("deriving %s from %s: %v", tag, src, err)
	}
}

func derive(src, dst, tag string, edit func(map[string]any)) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	tr, tw := tar.NewReader(in), tar.NewWriter(out)
	// The manifest and configs are small: kept until the end; the
	// layers are copied as they come.
	small := map[string][]byte{}
	for {
		hd, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if hd.Typeflag == tar.TypeReg && path.Ext(hd.Name) == ".json" {
			if small[hd.Name], err = io.ReadAll(tr); err != nil {
				return err
			}
			continue
		}
		if err := tw.WriteHeader(hd); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	var manifest []map[string]any
	if err := json.Unmarshal(small["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		return errors.New("expected a manifest.json of one image")
	}
	name, _ := manifest[0]["Config"].(string)
	var cfg map[string]any
	if err := json.Unmarshal(small[name], &cfg); err != nil {
		return errors.New("no config " + name)
	}
	edit(cfg)
	body, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	name = hex.EncodeToString(sum[:]) + ".json"
	manifest[0]["Config"], manifest[0]["RepoTags"] = name, []string{tag}
	mbody, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		body []byte
	}{{name, body}, {"manifest.json", mbody}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(f.body); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return out.Close()
}
