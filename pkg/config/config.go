// Package config reads the configuration file of kubectl logexport (--config FILE): the pods and
// containers to export, as selections such as the flags give, several in one run, like the map
// from namespaces to pod patterns of the tool this one grew from.
//
// The file is versioned as Kubernetes' own are (apiVersion and kind) and decoded strictly: an
// unknown or repeated field is an error, so that a typo never widens or narrows an export
// silently. Every error names the field by its path (selections[1].pods[0]).
//
// The file holds selections only. Run settings (the directory, --since, --max-log-requests, ...)
// stay flags: the directory is tied to the volume a pod mounts, and each setting has exactly one
// place it can come from.
package config

import (
	"bufio"
	"bytes"
	gojson "encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/logexport/kubectl-logexport/pkg/podselect"
)

// The version and kind a file must declare.
const (
	APIVersion = "logexport/v1alpha1"
	Kind       = "Config"
)

// Config is the configuration file.
type Config struct {
	metav1.TypeMeta `json:",inline"`
	// Selections are exported together; a container that several select is exported once.
	Selections []Selection `json:"selections"`
}

// Selection chooses pods and containers in one namespace, or in all of them, as the flags do.
type Selection struct {
	// Namespace to export from; empty: the current context's namespace (or -n), as for the flags.
	Namespace string `json:"namespace,omitempty"`
	// AllNamespaces selects in every namespace; Namespace must be empty then.
	AllNamespaces bool `json:"allNamespaces,omitempty"`
	// Pods are regular expressions (Go RE2, unanchored); a pod whose name matches one is
	// selected. None: every pod.
	Pods []string `json:"pods,omitempty"`
	// ExcludePods skips pods whose name matches one of these.
	ExcludePods []string `json:"excludePods,omitempty"`
	// Containers narrows the containers (init and ephemeral ones included) to those matching one.
	Containers []string `json:"containers,omitempty"`
	// ExcludeContainers skips containers whose name matches one of these.
	ExcludeContainers []string `json:"excludeContainers,omitempty"`
	// LabelSelector and FieldSelector filter pods on the server, as -l and --field-selector do.
	LabelSelector string `json:"labelSelector,omitempty"`
	FieldSelector string `json:"fieldSelector,omitempty"`
}

// Load reads, decodes and validates a configuration file. Errors start with the file's name.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the configuration: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a configuration; name is the file's, for errors.
func Parse(name string, data []byte) (*Config, error) {
	c, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if errs := c.Validate(); len(errs) > 0 {
		return nil, fileError(name, errs)
	}
	return c, nil
}

// fileError is the one line that says what is wrong with a file: every field error, each with
// its path.
func fileError(name string, errs field.ErrorList) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return fmt.Errorf("%s: %s", name, strings.Join(msgs, "; "))
}

// decode reads YAML (or JSON) strictly. YAML is converted to JSON first, as Kubernetes does, so
// that the JSON tags are the field names; sigs.k8s.io/json then reports unknown and repeated
// fields with their paths.
func decode(data []byte) (*Config, error) {
	if n := documents(data); n > 1 {
		return nil, fmt.Errorf("holds %d YAML documents: a configuration is one (put every selection in its selections)", n)
	}
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", unwrapYAML(err))
	}
	c := &Config{}
	strict, err := kjson.UnmarshalStrict(j, c)
	if err != nil {
		var te *gojson.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field == "":
			return nil, fmt.Errorf("must be a mapping with apiVersion, kind and selections, not %s", te.Value)
		case errors.As(err, &te):
			return nil, fmt.Errorf("%s: must be %s, not %s", indexed(j, te.Field), describe(te.Type), te.Value)
		}
		return nil, err
	}
	if len(strict) > 0 {
		msgs := make([]string, len(strict))
		for i, e := range strict {
			msgs[i] = strictMessage(e)
		}
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	return c, nil
}

// documents counts the YAML documents of data that hold anything: the conversion to JSON reads
// only the first, and would drop the others without a word.
func documents(data []byte) int {
	r := kyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	n := 0
	for {
		doc, err := r.Read()
		if err != nil {
			return n
		}
		for _, l := range strings.Split(string(doc), "\n") {
			if t := strings.TrimSpace(l); t != "" && t != "---" && !strings.HasPrefix(t, "#") {
				n++
				break
			}
		}
	}
}

// indexed puts the index of the selection into a type error's path, which encoding/json gives
// without list indexes ("selections.pods"): the first selection that fails to decode on its
// own is the one.
func indexed(j []byte, path string) string {
	rest, ok := strings.CutPrefix(path, "selections.")
	if !ok {
		return path
	}
	var c struct {
		Selections []gojson.RawMessage `json:"selections"`
	}
	if gojson.Unmarshal(j, &c) != nil {
		return path
	}
	for i, raw := range c.Selections {
		var s Selection
		if gojson.Unmarshal(raw, &s) != nil {
			return fmt.Sprintf("selections[%d].%s", i, rest)
		}
	}
	return path
}

// unwrapYAML drops the conversion's prefix, which names no file and says nothing a user can act
// on, and puts the parser's message on one line.
func unwrapYAML(err error) error {
	s := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
	return errors.New(strings.Join(strings.Fields(s), " "))
}

// strictMessage says which field is unknown or repeated and, for an unknown one, which fields
// the place it is in has.
func strictMessage(err error) string {
	fe, ok := err.(interface{ FieldPath() string })
	if !ok {
		return err.Error()
	}
	path := fe.FieldPath()
	if strings.HasPrefix(err.Error(), "duplicate field") {
		return path + ": duplicate field"
	}
	known := jsonFields(reflect.TypeFor[Config]())
	if strings.Contains(path, ".") {
		known = jsonFields(reflect.TypeFor[Selection]())
	}
	return fmt.Sprintf("%s: unknown field (known here: %s)", path, strings.Join(known, ", "))
}

// jsonFields lists a struct's JSON field names, those of inlined structs included.
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case f.Anonymous && name == "":
			out = append(out, jsonFields(f.Type)...)
		case name != "" && name != "-":
			out = append(out, name)
		}
	}
	return out
}

// describe names a Go type as the YAML it is written as.
func describe(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Struct, reflect.Map:
		return "a mapping"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return "a list of strings"
		}
		return "a list of " + strings.TrimPrefix(describe(t.Elem()), "a ") + "s"
	}
	return t.String()
}

// Validate checks everything decoding cannot: the version, and that every pattern and selector
// parses, as the flags' would.
func (c *Config) Validate() field.ErrorList {
	var errs field.ErrorList
	switch c.APIVersion {
	case APIVersion:
	case "":
		errs = append(errs, field.Required(field.NewPath("apiVersion"), "must be "+APIVersion))
	default:
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), c.APIVersion, []string{APIVersion}))
	}
	switch c.Kind {
	case Kind:
	case "":
		errs = append(errs, field.Required(field.NewPath("kind"), "must be "+Kind))
	default:
		errs = append(errs, field.NotSupported(field.NewPath("kind"), c.Kind, []string{Kind}))
	}
	sels := field.NewPath("selections")
	if len(c.Selections) == 0 {
		errs = append(errs, field.Required(sels, "at least one selection"))
	}
	for i, s := range c.Selections {
		errs = append(errs, s.validate(sels.Index(i))...)
	}
	return errs
}

func (s Selection) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if s.Namespace != "" {
		if s.AllNamespaces {
			errs = append(errs, field.Forbidden(p.Child("namespace"), "may not be set with allNamespaces: true"))
		} else if msgs := validation.IsDNS1123Label(s.Namespace); len(msgs) > 0 {
			errs = append(errs, field.Invalid(p.Child("namespace"), s.Namespace, strings.Join(msgs, ", ")))
		}
	}
	for _, list := range []struct {
		name     string
		patterns []string
	}{{"pods", s.Pods}, {"excludePods", s.ExcludePods}, {"containers", s.Containers}, {"excludeContainers", s.ExcludeContainers}} {
		for j, expr := range list.patterns {
			if expr == "" {
				// An empty pattern matches every name: in a list, a slip (a null, an empty
				// item) that would select or exclude everything.
				errs = append(errs, field.Invalid(p.Child(list.name).Index(j), expr, "must not be empty"))
				continue
			}
			if _, err := regexp.Compile(expr); err != nil {
				errs = append(errs, field.Invalid(p.Child(list.name).Index(j), expr, err.Error()))
			}
		}
	}
	if _, err := labels.Parse(s.LabelSelector); err != nil {
		errs = append(errs, field.Invalid(p.Child("labelSelector"), s.LabelSelector, err.Error()))
	}
	if _, err := fields.ParseSelector(s.FieldSelector); err != nil {
		errs = append(errs, field.Invalid(p.Child("fieldSelector"), s.FieldSelector, err.Error()))
	}
	return errs
}

// PodSelections returns the file's selections as the flags would give them. A selection without a
// namespace takes namespace, the one the flags would use (-n, else the current context's).
// Validate must have passed.
func (c *Config) PodSelections(namespace string) ([]podselect.Selection, error) {
	out := make([]podselect.Selection, 0, len(c.Selections))
	for i, s := range c.Selections {
		sel, err := podselect.Compile(s.Pods, s.ExcludePods, s.Containers, s.ExcludeContainers)
		if err != nil {
			return nil, fmt.Errorf("selections[%d]: %w", i, err)
		}
		ns := s.Namespace
		if ns == "" && !s.AllNamespaces {
			ns = namespace
		}
		out = append(out, podselect.Selection{
			Scope: podselect.Scope{Namespace: ns, AllNamespaces: s.AllNamespaces,
				LabelSelector: s.LabelSelector, FieldSelector: s.FieldSelector},
			Selector: sel,
		})
	}
	return out, nil
}
