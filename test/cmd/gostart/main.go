// Command gostart does nothing: a Go program that links only the
// standard library, whose run time is the floor of any Go process's
// start-up on this machine (the breakdown of `make bench` sets fuseguard's
// against it).
package main

import "os"

func main() { os.Exit(0) }
