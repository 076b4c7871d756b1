package e2e

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// cronJobConfig is what an overlay's CronJob runs: its arguments and the configuration file it
// mounts from the overlay's ConfigMap.
type cronJobConfig struct {
	args   []string
	config string
}

// renderedCronJob renders an overlay and checks that its CronJob reads the configuration from
// the generated ConfigMap: mounted read-only at the directory --config names, from the ConfigMap
// the overlay generates (hash suffix and all).
func renderedCronJob(t *testing.T, name string) cronJobConfig {
	t.Helper()
	var cron *batchv1.CronJob
	configMaps := map[string]*corev1.ConfigMap{}
	objs := renderedOverlay(t, name)
	for _, obj := range objs {
		switch obj["kind"] {
		case "CronJob":
			cron = &batchv1.CronJob{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, cron); err != nil {
				t.Fatal(err)
			}
		case "ConfigMap":
			cm := &corev1.ConfigMap{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, cm); err != nil {
				t.Fatal(err)
			}
			configMaps[cm.Name] = cm
		}
	}
	if cron == nil || len(cron.Spec.JobTemplate.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("the %s overlay has no CronJob with one container: %v", name, objs)
	}
	pod := cron.Spec.JobTemplate.Spec.Template.Spec
	c := pod.Containers[0]
	var path string
	for _, a := range c.Args {
		if p, ok := strings.CutPrefix(a, "--config="); ok {
			path = p
		}
	}
	if path == "" {
		t.Fatalf("the %s overlay's CronJob args %v have no --config=FILE", name, c.Args)
	}
	var mount *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if m.MountPath == filepath.Dir(path) {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil || !mount.ReadOnly {
		t.Fatalf("the %s overlay mounts nothing read-only at %s: %+v", name, filepath.Dir(path), c.VolumeMounts)
	}
	var cm *corev1.ConfigMap
	for _, v := range pod.Volumes {
		if v.Name == mount.Name && v.ConfigMap != nil {
			cm = configMaps[v.ConfigMap.Name]
		}
	}
	if cm == nil {
		t.Fatalf("the %s overlay's volume %s is not a ConfigMap it generates (%v)", name, mount.Name, slices.Sorted(maps.Keys(configMaps)))
	}
	data, ok := cm.Data[filepath.Base(path)]
	if !ok {
		t.Fatalf("ConfigMap %s has no %s: %v", cm.Name, filepath.Base(path), cm.Data)
	}
	return cronJobConfig{args: c.Args, config: data}
}

// argsWith returns the CronJob's arguments with the configuration at a local copy of it and the
// directory at dir, so that the plugin runs them here as the Job would there.
func (c cronJobConfig) argsWith(t *testing.T, dir string) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(c.config), 0o600); err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(c.args))
	for _, a := range c.args {
		switch {
		case strings.HasPrefix(a, "--config="):
			a = "--config=" + p
		case strings.HasPrefix(a, "--dir="):
			a = "--dir=" + dir
		}
		out = append(out, a)
	}
	return out
}
