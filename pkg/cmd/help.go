package cmd

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// flagGroupAnnotation marks a flag with the help section it is listed in; a flag without it is one
// of the plugin's own, so that a flag added later lands among them unless it says otherwise.
const flagGroupAnnotation = "logexport.help/group"

const (
	groupKubeconfig = "kubeconfig"
	groupGlobal     = "global"
)

// flagGroup is one section of --help.
type flagGroup struct {
	Title  string
	Usages string
}

// usageTemplate is cobra's default usage template with its "Flags" and "Global Flags" sections
// replaced by flagGroups: the plugin's own flags first, then the twenty-odd kubeconfig flags of
// cli-runtime, then klog's, where kubectl too keeps the flags every command shares.
var usageTemplate = strings.Replace(
	(&cobra.Command{}).UsageTemplate(),
	`{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}`,
	`{{range logexportFlagGroups .}}

{{.Title}}:
{{.Usages | trimTrailingWhitespaces}}{{end}}`, 1)

// groupFlags sets the grouped usage template on the root command; subcommands inherit it.
func groupFlags(root *cobra.Command) {
	cobra.AddTemplateFunc("logexportFlagGroups", flagGroups)
	root.SetUsageTemplate(usageTemplate)
}

// annotateFlags puts every flag of fs that is not in keep into group.
func annotateFlags(fs *pflag.FlagSet, group string, keep ...string) {
	fs.VisitAll(func(f *pflag.Flag) {
		for _, k := range keep {
			if f.Name == k {
				return
			}
		}
		if f.Annotations == nil {
			f.Annotations = map[string][]string{}
		}
		f.Annotations[flagGroupAnnotation] = []string{group}
	})
}

// flagGroups lists a command's flags (its own and those it inherits) by section, skipping empty
// sections; each section is sorted by name, as cobra sorts them.
func flagGroups(c *cobra.Command) []flagGroup {
	sets := map[string]*pflag.FlagSet{}
	for _, g := range []string{"", groupKubeconfig, groupGlobal} {
		sets[g] = pflag.NewFlagSet(g, pflag.ContinueOnError)
	}
	add := func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		g := ""
		if a := f.Annotations[flagGroupAnnotation]; len(a) == 1 {
			g = a[0]
		}
		if sets[g].Lookup(f.Name) == nil {
			sets[g].AddFlag(f)
		}
	}
	c.LocalFlags().VisitAll(add)
	c.InheritedFlags().VisitAll(add)
	var out []flagGroup
	for _, g := range []struct{ key, title string }{
		{"", "Flags"},
		{groupKubeconfig, "Kubeconfig Flags"},
		{groupGlobal, "Global Flags"},
	} {
		if sets[g.key].HasFlags() {
			out = append(out, flagGroup{Title: g.title, Usages: sets[g.key].FlagUsages()})
		}
	}
	return out
}
