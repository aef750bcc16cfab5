package cli

import (
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// interspersed moves the flags of the leaf command in front of its
// positional arguments, so `entrepot bucket allow photos --key k --read`
// works like `entrepot bucket allow --key k --read photos` (urfave/cli v2
// stops parsing flags at the first argument). Tokens after "--" stay put.
func interspersed(app *ucli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	cmds, flags := app.Commands, app.Flags
	i := 1
	// Walk the command path: global and intermediate flags, then command names.
	for i < len(args) {
		tok := args[i]
		if tok == "--" {
			return append(out, args[i:]...)
		}
		if n := flagLen(flags, args, i); n > 0 {
			out = append(out, args[i:i+n]...)
			i += n
			continue
		}
		cmd := findCommand(cmds, tok)
		if cmd == nil {
			return append(out, args[i:]...) // unknown: let urfave report it
		}
		out = append(out, tok)
		i++
		cmds, flags = cmd.Subcommands, cmd.Flags
		if len(cmds) == 0 {
			break
		}
	}
	// Leaf command: flags first, then positionals.
	var fl, pos []string
	for i < len(args) {
		tok := args[i]
		if tok == "--" {
			pos = append(pos, args[i:]...)
			break
		}
		if n := flagLen(flags, args, i); n > 0 {
			fl = append(fl, args[i:i+n]...)
			i += n
			continue
		}
		pos = append(pos, tok)
		i++
	}
	return append(append(out, fl...), pos...)
}

func findCommand(cmds []*ucli.Command, name string) *ucli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// flagLen is how many tokens the flag at args[i] spans: 2 with a separate
// value, 1 without, 0 when args[i] is not a flag ("-" alone is not one).
func flagLen(flags []ucli.Flag, args []string, i int) int {
	tok := args[i]
	switch {
	case !strings.HasPrefix(tok, "-") || tok == "-":
		return 0
	case takesValue(flags, tok) && i+1 < len(args):
		return 2
	}
	return 1
}

// takesValue reports whether the flag token (without "=value") needs the next token as its value.
func takesValue(flags []ucli.Flag, tok string) bool {
	if strings.Contains(tok, "=") {
		return false
	}
	name := strings.TrimLeft(tok, "-")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*ucli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}
