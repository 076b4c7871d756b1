package cmd

import (
	"errors"
	"fmt"
)

// dryRunValue is --dry-run as kubectl spells it: none, client or server, and the flag alone means
// client. The export only reads from the cluster, so client is the one dry run there is; true and
// false, the flag's values when it was a boolean, still work.
type dryRunValue struct{ on *bool }

func (d dryRunValue) String() string {
	if d.on != nil && *d.on {
		return "client"
	}
	return "none"
}

func (d dryRunValue) Set(s string) error {
	switch s {
	case "client", "true":
		*d.on = true
	case "none", "false":
		*d.on = false
	case "server":
		return errors.New(`"server" is not supported (an export only reads from the cluster): use --dry-run=client`)
	default:
		return fmt.Errorf(`must be "none", "client" or "server"`)
	}
	return nil
}

func (dryRunValue) Type() string { return "string" }
