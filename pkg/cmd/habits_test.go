package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/target"
)

// --dry-run takes kubectl's values; alone it means client; server is refused with a reason.
func TestDryRunFlag(t *testing.T) {
	tests := []struct {
		args    []string
		want    bool
		wantErr string
	}{
		{args: nil, want: false},
		{args: []string{"--dry-run"}, want: true},
		{args: []string{"--dry-run=client"}, want: true},
		{args: []string{"--dry-run=none"}, want: false},
		{args: []string{"--dry-run=true"}, want: true},
		{args: []string{"--dry-run=false"}, want: false},
		{args: []string{"--dry-run=server"}, wantErr: `invalid argument "server" for "--dry-run" flag: "server" is not supported (an export only reads from the cluster): use --dry-run=client`},
		{args: []string{"--dry-run=yes"}, wantErr: `invalid argument "yes" for "--dry-run" flag: must be "none", "client" or "server"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			fs := NewCmd(genericiooptions.IOStreams{}).Flags()
			err := fs.Parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %s", err, tt.wantErr)
				}
				return
			}
			// The flag's value reads back the option it set.
			want := map[bool]string{true: "client", false: "none"}[tt.want]
			if got := fs.Lookup("dry-run").Value.String(); err != nil || got != want {
				t.Fatalf("err = %v, dry run = %s, want %s", err, got, want)
			}
		})
	}
}

func TestSummaryModes(t *testing.T) {
	results := []export.Result{
		{Target: target.Target{Namespace: "a", Pod: "p", Container: "ok"}, Lines: 2, Bytes: 10},
		{Target: target.Target{Namespace: "a", Pod: "p", Container: "idle"}},
		{Target: target.Target{Namespace: "a", Pod: "p", Container: "gap"}, Gaps: []export.Gap{{Reason: "rotated"}}},
		{Target: target.Target{Namespace: "a", Pod: "p", Container: "bad"}, Err: errors.New("boom")},
		{Target: target.Target{Namespace: "a", Pod: "p", Container: "new"}, Skipped: "not started"},
		{Target: target.Target{Namespace: "a", Pod: "q", Container: "idle"}},
	}
	tests := []struct {
		mode, wantRows string
	}{
		{summaryAll, "ok idle gap bad new idle"},
		{summaryChanged, "ok gap bad new"},
		{summaryNone, ""},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			for _, output := range []string{"", "json"} {
				streams, _, out, errOut := genericiooptions.NewTestIOStreams()
				o := NewOptions(streams)
				o.Summary, o.Output, o.Dir = tt.mode, output, "logs"
				if err := o.Validate(); err != nil {
					t.Fatal(err)
				}
				if err := o.printSummary(newSummary(results, nil), nil); err != nil {
					t.Fatal(err)
				}
				var rows []string
				if output == "json" {
					var s Summary
					if err := json.Unmarshal(out.Bytes(), &s); err != nil {
						t.Fatal(err)
					}
					for _, c := range s.Containers {
						rows = append(rows, c.Container)
					}
					// The totals count every container, listed or not.
					if s.Selected != 6 || s.Lines != 2 || s.Failed != 1 || s.Gaps != 1 {
						t.Fatalf("json totals %+v", s)
					}
				} else {
					lines := strings.Split(strings.TrimSpace(out.String()), "\n")
					if tt.wantRows == "" && out.Len() > 0 {
						t.Fatalf("stdout %q, want nothing (not even a header)", out.String())
					}
					for _, l := range lines[min(1, len(lines)):] {
						rows = append(rows, strings.Fields(l)[2])
					}
					// Gaps, errors and the totals line go to stderr whatever the mode.
					for _, w := range []string{"warning: a/p/gap: ", "error: a/p/bad: boom", "exported 2 lines (10 bytes) from 6 containers into logs"} {
						if !strings.Contains(errOut.String(), w) {
							t.Fatalf("stderr lacks %q:\n%s", w, errOut.String())
						}
					}
				}
				if strings.Join(rows, " ") != tt.wantRows {
					t.Fatalf("-o %q: rows %q, want %q", output, rows, tt.wantRows)
				}
			}
		})
	}
	o := NewOptions(genericiooptions.IOStreams{})
	o.Summary = "some"
	if err := o.Validate(); err == nil || err.Error() != `invalid --summary "some": use all, changed or none` {
		t.Fatalf("err = %v", err)
	}
}

// Nothing selected is said on stderr; a namespace that does not exist fails the run, but only when
// the API server said so.
func TestNoMatch(t *testing.T) {
	nsRes := schema.GroupResource{Resource: "namespaces"}
	forbidden := func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(nsRes, "", errors.New("RBAC"))
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	tests := []struct {
		name       string
		ns         string
		all        bool
		patterns   []string
		containers []string
		dryRun     bool
		follow     bool
		noNSRights bool
		config     string
		wantErr    string
		wantStderr string
		wantStdout string
	}{
		{name: "empty namespace", ns: "empty", wantStderr: "No pods matched in namespace empty.\n"},
		{name: "no pod matches", ns: "shop", patterns: []string{"web"}, dryRun: true, wantStderr: "No pods matched in namespace shop.\n"},
		{name: "no container matches", ns: "shop", containers: []string{"db"}, dryRun: true, wantStderr: "No containers matched in namespace shop.\n"},
		{name: "all namespaces", all: true, patterns: []string{"web"}, wantStderr: "No pods matched in any namespace.\n"},
		{name: "missing namespace", ns: "shpo", wantErr: "namespace shpo does not exist"},
		{name: "missing namespace, dry run", ns: "shpo", dryRun: true, wantErr: "namespace shpo does not exist"},
		{name: "missing namespace, follow", ns: "shpo", follow: true, wantErr: "namespace shpo does not exist"},
		{name: "no right to tell", ns: "shpo", noNSRights: true, wantStderr: "No pods matched in namespace shpo.\n"},
		{name: "config: one namespace missing, the rest selected", dryRun: true,
			config:     "selections:\n- namespace: shop\n- namespace: shpo\n",
			wantStdout: "shop        cart   app", wantStderr: "warning: namespace shpo: does not exist\n"},
		{name: "config: two missing", config: "selections:\n- namespace: shpo\n- namespace: nope\n", wantErr: "namespaces nope, shpo do not exist"},
		{name: "config: nothing matched in two", config: "selections:\n- namespace: shop\n  pods: [web]\n- namespace: empty\n", wantStderr: "No pods matched in namespaces empty, shop.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			streams, _, out, errOut := genericiooptions.NewTestIOStreams()
			o := NewOptions(streams)
			c := fake.NewClientset(pod,
				&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
				&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "empty"}})
			if tt.noNSRights {
				c.PrependReactor("get", "namespaces", forbidden)
				c.PrependReactor("list", "namespaces", forbidden)
			}
			o.client, o.namespace, o.AllNamespaces = c, tt.ns, tt.all
			o.Patterns, o.Containers, o.DryRun, o.Follow, o.Dir = tt.patterns, tt.containers, tt.dryRun, tt.follow, t.TempDir()
			if tt.config != "" {
				o.ConfigFile = filepath.Join(t.TempDir(), "config.yaml")
				if err := os.WriteFile(o.ConfigFile, []byte("apiVersion: logexport/v1alpha1\nkind: Config\n"+tt.config), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := o.loadConfig(); err != nil {
					t.Fatal(err)
				}
			}
			if err := o.Validate(); err != nil {
				t.Fatal(err)
			}
			err := o.Run(context.Background())
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(errOut.String(), tt.wantStderr) {
				t.Fatalf("stderr %q, want it to begin with %q", errOut.String(), tt.wantStderr)
			}
			if !strings.Contains(out.String(), tt.wantStdout) || (tt.wantStdout == "" && out.Len() > 0) {
				t.Fatalf("stdout %q, want %q", out.String(), tt.wantStdout)
			}
		})
	}
}
