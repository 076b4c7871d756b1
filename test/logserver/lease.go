package logserver

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes/scheme"
)

// Leases: the coordination.k8s.io/v1 Leases a run into a bucket, or a shard, holds. Served are
// what client-go's leaderelection (LeaseLock: get, create, update) and pkg/shard (a list by label
// selector) ask, with the API server's optimistic concurrency: an update whose resourceVersion is
// not the stored one is a conflict, so two holders racing for a lease see each other.

var leaseResource = coordinationv1.Resource("leases")

// decoder reads request bodies in JSON or protobuf, as clients send them.
var decoder = serializer.NewCodecFactory(scheme.Scheme).UniversalDeserializer()

// leaseProtobuf encodes leases in protobuf, for clients that accept it.
var leaseProtobuf = func() runtime.Encoder {
	codecs := serializer.NewCodecFactory(scheme.Scheme)
	info, _ := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), runtime.ContentTypeProtobuf)
	return codecs.EncoderForVersion(info.Serializer, coordinationv1.SchemeGroupVersion)
}()

// Lease returns a lease as the API serves it now, or nil.
func (s *Server) Lease(ns, name string) *coordinationv1.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.leases[ns+"/"+name]; l != nil {
		return l.DeepCopy()
	}
	return nil
}

// serveLeases answers /apis/coordination.k8s.io/v1/namespaces/NS/leases[/NAME].
func (s *Server) serveLeases(w http.ResponseWriter, r *http.Request, ns, name string) {
	s.mu.Lock()
	known := s.namespaces[ns]
	s.mu.Unlock()
	if !known {
		writeError(w, apierrors.NewNotFound(metav1.SchemeGroupVersion.WithResource("namespaces").GroupResource(), ns))
		return
	}
	switch {
	case name == "" && r.Method == http.MethodGet:
		s.listLeases(w, r, ns)
	case name != "" && r.Method == http.MethodGet:
		s.mu.Lock()
		l := s.leases[ns+"/"+name]
		if l != nil {
			l = l.DeepCopy()
		}
		s.mu.Unlock()
		if l == nil {
			writeError(w, apierrors.NewNotFound(leaseResource, name))
			return
		}
		writeLease(w, r, http.StatusOK, l)
	case name == "" && r.Method == http.MethodPost, name != "" && r.Method == http.MethodPut:
		l, err := readLease(r)
		if err != nil {
			writeError(w, apierrors.NewBadRequest(err.Error()))
			return
		}
		if name == "" {
			name = l.Name
		}
		if l.Name != name || l.Namespace != "" && l.Namespace != ns {
			writeError(w, apierrors.NewBadRequest(fmt.Sprintf("the lease's name and namespace (%s/%s) are not the request's (%s/%s)", l.Namespace, l.Name, ns, name)))
			return
		}
		code, serr := s.storeLease(ns, l, r.Method == http.MethodPost)
		if serr != nil {
			writeError(w, serr)
			return
		}
		writeLease(w, r, code, l)
	default:
		writeStatus(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "leases are served for get, list, create and update", "")
	}
}

// storeLease creates (create) or updates l, setting its metadata as the API server does.
func (s *Server) storeLease(ns string, l *coordinationv1.Lease, create bool) (int, *apierrors.StatusError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := ns + "/" + l.Name
	old := s.leases[key]
	switch {
	case create && old != nil:
		return 0, apierrors.NewAlreadyExists(leaseResource, l.Name)
	case !create && old == nil:
		return 0, apierrors.NewNotFound(leaseResource, l.Name)
	case !create && l.ResourceVersion != "" && l.ResourceVersion != old.ResourceVersion:
		return 0, apierrors.NewConflict(leaseResource, l.Name, fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
	}
	s.leaseRV++
	l.Namespace, l.ResourceVersion = ns, strconv.FormatUint(s.leaseRV, 10)
	code := http.StatusOK
	if create {
		l.UID, l.CreationTimestamp, code = uuid.NewUUID(), metav1.Now(), http.StatusCreated
	} else {
		l.UID, l.CreationTimestamp = old.UID, old.CreationTimestamp
	}
	s.leases[key] = l.DeepCopy()
	return code, nil
}

func (s *Server) listLeases(w http.ResponseWriter, r *http.Request, ns string) {
	sel := labels.Everything()
	if v := r.URL.Query().Get("labelSelector"); v != "" {
		var err error
		if sel, err = labels.Parse(v); err != nil {
			writeError(w, apierrors.NewBadRequest(err.Error()))
			return
		}
	}
	s.mu.Lock()
	list := &coordinationv1.LeaseList{ListMeta: metav1.ListMeta{ResourceVersion: strconv.FormatUint(s.leaseRV, 10)}, Items: []coordinationv1.Lease{}}
	for _, l := range s.leases {
		if l.Namespace == ns && sel.Matches(labels.Set(l.Labels)) {
			list.Items = append(list.Items, *l.DeepCopy())
		}
	}
	s.mu.Unlock()
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	list.TypeMeta = metav1.TypeMeta{Kind: "LeaseList", APIVersion: coordinationv1.SchemeGroupVersion.String()}
	writeLeaseObject(w, r, http.StatusOK, list)
}

func readLease(r *http.Request) (*coordinationv1.Lease, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	obj, _, err := decoder.Decode(body, nil, &coordinationv1.Lease{})
	if err != nil {
		return nil, fmt.Errorf("reading the lease: %w", err)
	}
	l, ok := obj.(*coordinationv1.Lease)
	if !ok {
		return nil, fmt.Errorf("the body is a %T, not a Lease", obj)
	}
	return l, nil
}

func writeLease(w http.ResponseWriter, r *http.Request, code int, l *coordinationv1.Lease) {
	l.TypeMeta = metav1.TypeMeta{Kind: "Lease", APIVersion: coordinationv1.SchemeGroupVersion.String()}
	writeLeaseObject(w, r, code, l)
}

func writeLeaseObject(w http.ResponseWriter, r *http.Request, code int, obj runtime.Object) {
	if accepts(r, runtime.ContentTypeProtobuf) {
		if b, err := runtime.Encode(leaseProtobuf, obj); err == nil {
			w.Header().Set("Content-Type", runtime.ContentTypeProtobuf)
			w.WriteHeader(code)
			_, _ = w.Write(b)
			return
		}
	}
	writeJSON(w, code, obj)
}

// writeError answers with an API error as the API server does: a Status object.
func writeError(w http.ResponseWriter, err *apierrors.StatusError) {
	st := err.ErrStatus
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	writeJSON(w, int(st.Code), &st)
}

// ExpireLease makes a lease free to take, as its expiry would once its holder stopped renewing
// it: a test need not wait out the duration after killing the holder. It returns false if there
// is no such lease.
func (s *Server) ExpireLease(ns, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.leases[ns+"/"+name]
	if l == nil {
		return false
	}
	none := ""
	s.leaseRV++
	l.Spec.HolderIdentity, l.ResourceVersion = &none, strconv.FormatUint(s.leaseRV, 10)
	return true
}
