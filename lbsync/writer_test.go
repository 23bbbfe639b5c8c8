package lbsync

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestWriteConfigRotatesAndRejects(t *testing.T) {
	bin := haproxyBin(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := echoWorld(1)
	cfg := Config{BindAddr: "127.0.0.1", HTTPPort: freePort(t), StatsBind: "127.0.0.1:" + strconv.Itoa(freePort(t)),
		MapPath: filepath.Join(dir, "hosts.map"), SocketPath: filepath.Join(dir, "admin.sock")}
	path := filepath.Join(dir, "haproxy.cfg")
	var texts []string
	for i := 0; i < 7; i++ {
		w.scale("/echo", i+1, 31000)
		r := mustRender(t, nil, w.s, cfg)
		if err := WriteConfig(ctx, bin, path, r.Config, resultMaps(r, cfg), 0, true); err != nil {
			t.Fatal(err)
		}
		texts = append(texts, r.Config)
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if read(path) != texts[6] {
		t.Error("live config is not the last one")
	}
	for i := 1; i <= 5; i++ {
		if read(path+"."+strconv.Itoa(i)) != texts[6-i] {
			t.Errorf("%s.%d is not config %d", path, i, 6-i)
		}
	}
	if _, err := os.Stat(path + ".6"); err == nil {
		t.Error("more than 5 kept")
	}
	// Identical text: no rotation.
	if err := WriteConfig(ctx, bin, path, texts[6], nil, 0, true); err != nil || read(path+".1") != texts[5] {
		t.Errorf("rewrite of the same config rotated: %v", err)
	}
	// A bad candidate with a new map: nothing changes on disk.
	oldMap := read(cfg.MapPath)
	err := WriteConfig(ctx, bin, path, texts[6]+"\nbackend x\n  balance nonsense\n",
		map[string]string{cfg.MapPath: "bad.example x\n"}, 0, true)
	if err == nil || !strings.Contains(err.Error(), "balance") {
		t.Fatalf("bad candidate: %v", err)
	}
	if read(path) != texts[6] || read(path+".1") != texts[5] || read(cfg.MapPath) != oldMap {
		t.Error("bad candidate changed files on disk")
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temp file left: %s", e.Name())
		}
	}
}

// resultMaps are the map files of r under cfg.
func resultMaps(r *Result, cfg Config) map[string]string {
	cfg = cfg.withDefaults()
	return map[string]string{cfg.MapPath: r.HostMap, cfg.PathMapPath: r.PathMap}
}
