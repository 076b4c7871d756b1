package logserver

import (
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/logexport/kubectl-logexport/pkg/shard"
)

// TestLeases checks the lease operations a run into a bucket makes, in both encodings the
// command's client may use: what is created is got and listed by label, an update from a stale
// read is a conflict (what keeps two holders from both taking a lease), and errors carry the API
// server's reasons.
func TestLeases(t *testing.T) {
	for _, ct := range []string{"", "application/vnd.kubernetes.protobuf"} {
		name := "json"
		if ct != "" {
			name = "protobuf"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := New(t)
			cfg := s.RESTConfig()
			if ct != "" {
				cfg.ContentType, cfg.AcceptContentTypes = ct, ct+",application/json"
			}
			c, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			leases := c.CoordinationV1().Leases("default")
			if _, err := leases.Get(ctx, "a", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Fatalf("get of a missing lease: %v, want NotFound", err)
			}
			holder := "me"
			a, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"k": "1"}},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder}}, metav1.CreateOptions{})
			if err != nil || a.ResourceVersion == "" || a.UID == "" || a.Namespace != "default" {
				t.Fatalf("create = %+v, %v", a, err)
			}
			if _, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
				t.Fatalf("second create: %v, want AlreadyExists", err)
			}
			if _, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: map[string]string{"k": "2"}}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			got, err := leases.Get(ctx, "a", metav1.GetOptions{})
			if err != nil || got.ResourceVersion != a.ResourceVersion || got.Spec.HolderIdentity == nil || *got.Spec.HolderIdentity != "me" {
				t.Fatalf("get = %+v, %v", got, err)
			}
			other := "other"
			got.Spec.HolderIdentity = &other
			updated, err := leases.Update(ctx, got, metav1.UpdateOptions{})
			if err != nil || updated.ResourceVersion == a.ResourceVersion || updated.UID != a.UID {
				t.Fatalf("update = %+v, %v", updated, err)
			}
			// a is the read from before the update.
			if _, err := leases.Update(ctx, a, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
				t.Fatalf("update from a stale read: %v, want Conflict", err)
			}
			if _, err := leases.Update(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "c"}}, metav1.UpdateOptions{}); !apierrors.IsNotFound(err) {
				t.Fatalf("update of a missing lease: %v, want NotFound", err)
			}
			list, err := leases.List(ctx, metav1.ListOptions{LabelSelector: "k=1"})
			if err != nil || len(list.Items) != 1 || list.Items[0].Name != "a" || *list.Items[0].Spec.HolderIdentity != "other" {
				t.Fatalf("list k=1 = %+v, %v", list, err)
			}
			if list, err = leases.List(ctx, metav1.ListOptions{}); err != nil || len(list.Items) != 2 {
				t.Fatalf("list = %+v, %v", list, err)
			}
			if _, err := c.CoordinationV1().Leases("nowhere").List(ctx, metav1.ListOptions{}); !apierrors.IsNotFound(err) {
				t.Fatalf("list in a namespace that does not exist: %v, want NotFound", err)
			}
		})
	}
}

// TestLeaseHandover runs pkg/shard's protocol (client-go's leaderelection underneath) against the
// server: a second holder waits while the first holds the lease, and takes it once it is released.
func TestLeaseHandover(t *testing.T) {
	s := New(t)
	c := s.Client()
	o := func(id string) shard.LeaseOptions {
		return shard.LeaseOptions{Namespace: "default", Destination: "s3://b/p", Identity: id,
			LeaseDuration: time.Second, RenewDeadline: 600 * time.Millisecond, RetryPeriod: 100 * time.Millisecond}
	}
	held, release, err := shard.Acquire(context.Background(), c, o("first"))
	if err != nil {
		t.Fatal(err)
	}
	// Longer than the lease lasts: the first holder renews it meanwhile.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, _, err := shard.Acquire(ctx, c, o("second")); err == nil {
		t.Fatal("a second holder took the lease while the first held it")
	}
	if held.Err() != nil {
		t.Fatalf("the first holder lost its lease: %v", context.Cause(held))
	}
	release()
	_, release2, err := shard.Acquire(context.Background(), c, o("second"))
	if err != nil {
		t.Fatal(err)
	}
	defer release2()
	if l := s.Lease("default", shard.LeaseName("s3://b/p", 0)); l == nil || *l.Spec.HolderIdentity != "second" {
		t.Fatalf("lease = %+v, want held by second", l)
	}
}

// TestExpireLease: a lease whose holder was killed (never released, renewed a moment ago) is free
// to take at once after ExpireLease, rather than after its duration.
func TestExpireLease(t *testing.T) {
	s := New(t)
	c := s.Client()
	name := shard.LeaseName("s3://b/p", 0)
	dead, now, minute := "dead", metav1.NewMicroTime(time.Now()), int32(60)
	if _, err := c.CoordinationV1().Leases("default").Create(context.Background(), &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &dead, RenewTime: &now, AcquireTime: &now, LeaseDurationSeconds: &minute}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if !s.ExpireLease("default", name) {
		t.Fatal("ExpireLease found no lease")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, release, err := shard.Acquire(ctx, c, shard.LeaseOptions{Namespace: "default", Destination: "s3://b/p", Identity: "next",
		LeaseDuration: time.Minute, RenewDeadline: 40 * time.Second, RetryPeriod: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("the lease was not free to take once expired: %v", err)
	}
	release()
}
