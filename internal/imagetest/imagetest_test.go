package imagetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/atollhq/atoll/internal/registrytest"
)

func TestPushedImageKeepsItsConfig(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	bb, err := Busybox()
	if err != nil {
		t.Fatal(err)
	}
	base, err := Layer(append(Base(), bb...)...)
	if err != nil {
		t.Fatal(err)
	}
	top, err := Layer(Whiteout("etc/group"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := v1.Config{Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo hi"}, Env: []string{"A=1"}, WorkingDir: "/tmp", User: "nobody"}
	img, err := Image(cfg, base, top)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ref := reg.Host + "/bb:1"
	if err := Push(ctx, ref, img, "", ""); err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(ref, name.Insecure)
	got, err := remote.Image(r, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := got.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cf.Config.Entrypoint, cfg.Entrypoint) || cf.Config.User != "nobody" || cf.OS != "linux" {
		t.Errorf("pulled config %+v, want %+v on linux", cf.Config, cfg)
	}
	if ls, _ := got.Layers(); len(ls) != 2 {
		t.Errorf("pulled %d layers, want 2", len(ls))
	}
}
