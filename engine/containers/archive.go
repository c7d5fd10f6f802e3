package containers

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
)

// ArchiveImage is an image in a `docker save` archive.
type ArchiveImage struct {
	ID      string   // sha256:... of its config: the ID a daemon gives it once loaded
	Tags    []string // name:tag
	Arch    string   // its config's architecture, as OCI names it: amd64, arm64, arm; "" if unsaid
	Variant string   // its config's variant, for arm: v7, v8
}

// Platform is img's architecture with its variant: arm/v7.
func (img ArchiveImage) Platform() string {
	if img.Variant == "" {
		return img.Arch
	}
	return img.Arch + "/" + img.Variant
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// maxConfig bounds what is kept of an entry that may be an image config.
const maxConfig = 1 << 20

// ReadArchive lists the images of a `docker save` archive from its
// manifest.json and their configs, without a daemon, so that e2c knows
// which hosts lack them, or cannot run them, before sending anything. It
// reads both layouts docker save writes: the classic one (config at
// HEX.json) and the OCI one of Docker 25 and later (config at
// blobs/sha256/HEX). The whole archive is read: a config may come after
// the manifest.
func ReadArchive(r io.Reader) ([]ArchiveImage, error) {
	tr := tar.NewReader(r)
	var manifest []byte
	small := map[string][]byte{} // entries that may be configs, by clean name
	for {
		hd, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the archive: %w", err)
		}
		name := path.Clean(hd.Name)
		if hd.Typeflag != tar.TypeReg || hd.Size > maxConfig ||
			(name != "manifest.json" && !strings.HasSuffix(name, ".json") && !strings.HasPrefix(name, "blobs/sha256/")) {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("reading the archive: %w", err)
		}
		if name == "manifest.json" {
			manifest = b
		} else {
			small[name] = b
		}
	}
	if manifest == nil {
		return nil, errors.New("not a docker save archive: no manifest.json")
	}
	var m []struct {
		Config   string
		RepoTags []string
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	var out []ArchiveImage
	for _, e := range m {
		hex := strings.TrimSuffix(path.Base(e.Config), ".json")
		if !hex64.MatchString(hex) {
			return nil, fmt.Errorf("manifest.json: config %q is not named by its SHA-256", e.Config)
		}
		img := ArchiveImage{ID: "sha256:" + hex, Tags: e.RepoTags}
		if b, ok := small[path.Clean(e.Config)]; ok {
			var cfg struct{ Architecture, Variant string }
			if err := json.Unmarshal(b, &cfg); err != nil {
				return nil, fmt.Errorf("%s: %w", e.Config, err)
			}
			img.Arch, img.Variant = cfg.Architecture, cfg.Variant
		}
		out = append(out, img)
	}
	if len(out) == 0 {
		return nil, errors.New("manifest.json lists no image")
	}
	return out, nil
}
