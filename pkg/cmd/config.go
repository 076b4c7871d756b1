package cmd

import (
	"fmt"

	"github.com/logexport/kubectl-logexport/pkg/config"
	"github.com/logexport/kubectl-logexport/pkg/podselect"
)

// loadConfig reads --config, if given: a bad file is refused before anything talks to the cluster.
func (o *Options) loadConfig() error {
	if o.ConfigFile == "" {
		return nil
	}
	c, err := config.Load(o.ConfigFile)
	if err != nil {
		return err
	}
	o.config = c
	return nil
}

// buildSelections turns the flags, and the configuration file if there is one, into what the run
// lists. Without a file the flags are one selection. With one, the file's selections are what is
// exported and the selection flags narrow each of them: -n keeps the selections for that
// namespace (and takes an allNamespaces one there), -l and --field-selector are joined to each
// selection's own, and a pod or container must match the flags' patterns as well as the file's.
func (o *Options) buildSelections(flags podselect.Selector) error {
	scope := podselect.Scope{Namespace: o.namespace, AllNamespaces: o.AllNamespaces, LabelSelector: o.LabelSelector, FieldSelector: o.FieldSelector,
		ChunkSize: o.listChunk()}
	if o.config == nil {
		o.selections = []podselect.Selection{{Scope: scope, Selector: flags}}
		return nil
	}
	if o.AllNamespaces {
		return fmt.Errorf("--all-namespaces cannot be used with --config: the file's selections say where to look (allNamespaces: true in a selection for every namespace)")
	}
	sels, err := o.config.PodSelections(o.namespace)
	if err != nil {
		return fmt.Errorf("%s: %w", o.ConfigFile, err)
	}
	explicit := o.explicitNamespace()
	narrow := podselect.Selection{Scope: scope, Selector: flags}
	narrow.Scope.Namespace, narrow.Scope.AllNamespaces = explicit, explicit == ""
	o.selections = nil
	for _, s := range sels {
		if n, ok := s.Narrow(narrow); ok {
			n.Scope.ChunkSize = scope.ChunkSize
			o.selections = append(o.selections, n)
		}
	}
	if len(o.selections) == 0 {
		return fmt.Errorf("%s has no selection for namespace %s: with --config, -n keeps only the selections for its namespace", o.ConfigFile, explicit)
	}
	return nil
}

// explicitNamespace is -n/--namespace if it was given, "" if not.
func (o *Options) explicitNamespace() string {
	if o.configFlags.Namespace == nil {
		return ""
	}
	return *o.configFlags.Namespace
}
