package cmd

import (
	"github.com/spf13/cobra"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/completion"
)

// registerCompletions completes what kubectl completes for its own commands (namespaces, contexts,
// clusters, users), with kubectl's own helpers, and pod names from the cluster for the patterns.
// kubectl runs kubectl_complete-logexport (shipped beside the plugin) to complete
// `kubectl logexport <TAB>`.
func registerCompletions(cmd *cobra.Command, o *Options) {
	f := cmdutil.NewFactory(o.configFlags)
	completion.SetFactoryForCompletion(f)
	names := func(resource string) cobra.CompletionFunc {
		return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			return completion.CompGetResource(f, resource, toComplete), cobra.ShellCompDirectiveNoFileComp
		}
	}
	cmd.ValidArgsFunction = names("pod")
	for flag, fn := range map[string]cobra.CompletionFunc{
		"pod":         names("pod"),
		"exclude-pod": names("pod"),
		"namespace":   names("namespace"),
		"context":     completion.ContextCompletionFunc,
		"cluster":     completion.ClusterCompletionFunc,
		"user":        completion.UserCompletionFunc,
	} {
		// Every one of these flags is defined by NewCmd; an error here is a programming error.
		cobra.CheckErr(cmd.RegisterFlagCompletionFunc(flag, fn))
	}
}
