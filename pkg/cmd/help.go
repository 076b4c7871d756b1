package cmd

import (
	"fmt"
	"io"
	"strings"
	"unicode"

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

// groupFlags sets the grouped usage on the root command; subcommands inherit it.
//
// A Go function, not a usage template: executing a text/template that calls methods keeps every
// exported method of every type in the binary (the linker cannot tell which a template calls),
// which made the binary 30 -> 51 MB. cobra's own default usage is a function for the same reason.
func groupFlags(root *cobra.Command) {
	root.SetUsageFunc(usage)
}

// usage is cobra's default usage with its "Flags" and "Global Flags" sections replaced by
// flagGroups: the plugin's own flags first, then the twenty-odd kubeconfig flags of cli-runtime,
// then klog's, where kubectl too keeps the flags every command shares.
func usage(c *cobra.Command) error {
	var b strings.Builder
	b.WriteString("Usage:")
	if c.Runnable() {
		fmt.Fprintf(&b, "\n  %s", c.UseLine())
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\n  %s [command]", c.CommandPath())
	}
	if len(c.Aliases) > 0 {
		fmt.Fprintf(&b, "\n\nAliases:\n  %s", c.NameAndAliases())
	}
	if c.HasExample() {
		fmt.Fprintf(&b, "\n\nExamples:\n%s", c.Example)
	}
	if c.HasAvailableSubCommands() {
		b.WriteString("\n\nAvailable Commands:")
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() || sub.Name() == "help" {
				fmt.Fprintf(&b, "\n  %-*s %s", sub.NamePadding(), sub.Name(), sub.Short)
			}
		}
	}
	for _, g := range flagGroups(c) {
		fmt.Fprintf(&b, "\n\n%s:\n%s", g.Title, strings.TrimRightFunc(g.Usages, unicode.IsSpace))
	}
	if c.HasHelpSubCommands() {
		b.WriteString("\n\nAdditional help topics:")
		for _, sub := range c.Commands() {
			if sub.IsAdditionalHelpTopicCommand() {
				fmt.Fprintf(&b, "\n  %-*s %s", sub.CommandPathPadding(), sub.CommandPath(), sub.Short)
			}
		}
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\n\nUse \"%s [command] --help\" for more information about a command.", c.CommandPath())
	}
	b.WriteString("\n")
	_, err := io.WriteString(c.OutOrStderr(), b.String())
	return err
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
