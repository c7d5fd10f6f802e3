package containers

import (
	"archive/tar"
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func tarOf(t *testing.T, files map[string]string) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &b
}

func TestReadArchive(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []ArchiveImage
		fail  string
	}{
		{name: "classic", files: map[string]string{"manifest.json": `[{"Config":"` + h + `.json","RepoTags":["a/b:1"],"Layers":["x/layer.tar"]}]`},
			want: []ArchiveImage{{ID: "sha256:" + h, Tags: []string{"a/b:1"}}}},
		{name: "oci", files: map[string]string{"oci-layout": "{}", "./manifest.json": `[{"Config":"blobs/sha256/` + h + `","RepoTags":["a/b:1","a/b:latest"]}]`},
			want: []ArchiveImage{{ID: "sha256:" + h, Tags: []string{"a/b:1", "a/b:latest"}}}},
		{name: "classic, its config's platform", files: map[string]string{"manifest.json": `[{"Config":"` + h + `.json","RepoTags":["a/b:1"]}]`,
			h + ".json": `{"architecture":"arm","variant":"v7","os":"linux"}`},
			want: []ArchiveImage{{ID: "sha256:" + h, Tags: []string{"a/b:1"}, Arch: "arm", Variant: "v7"}}},
		{name: "oci, its config's platform", files: map[string]string{"manifest.json": `[{"Config":"blobs/sha256/` + h + `"}]`,
			"blobs/sha256/" + h: `{"architecture":"arm64"}`},
			want: []ArchiveImage{{ID: "sha256:" + h, Arch: "arm64"}}},
		{name: "bad config", files: map[string]string{"manifest.json": `[{"Config":"` + h + `.json"}]`, h + ".json": `[`},
			fail: h + ".json: unexpected end of JSON input"},
		{name: "untagged", files: map[string]string{"manifest.json": `[{"Config":"` + h + `.json"}]`},
			want: []ArchiveImage{{ID: "sha256:" + h}}},
		{name: "no manifest", files: map[string]string{"layer.tar": ""}, fail: "no manifest.json"},
		{name: "bad config name", files: map[string]string{"manifest.json": `[{"Config":"config.json"}]`}, fail: `config "config.json" is not named by its SHA-256`},
		{name: "empty", files: map[string]string{"manifest.json": `[]`}, fail: "lists no image"},
		{name: "bad json", files: map[string]string{"manifest.json": `{`}, fail: "manifest.json: unexpected end of JSON input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadArchive(tarOf(t, tc.files))
			if tc.fail != "" {
				if err == nil || !strings.Contains(err.Error(), tc.fail) {
					t.Fatalf("got %v, %v; want error %q", got, err, tc.fail)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	if _, err := ReadArchive(strings.NewReader("not a tar")); err == nil {
		t.Error("garbage: no error")
	}
}

func TestPlatform(t *testing.T) {
	if got := (ArchiveImage{Arch: "arm", Variant: "v7"}).Platform(); got != "arm/v7" {
		t.Errorf("Platform: %q", got)
	}
}
