// Command entrepot is the entrepot server and its admin client; see package cli.
package main

import "github.com/entrepot/entrepot/cli"

func main() { cli.Main() }
