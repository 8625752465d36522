// Command genoptions writes, for one adapter package, the file that exports
// what every adapter shares (options_shared.go): the options of
// adapters/internal/engine as functions carrying the engine's doc comments,
// the types users see (Retry and PartitionStats as structs with their
// fields; ErrorPolicy, StartOffset, Ordering, PartitionState and
// TopicPartition as aliases with their constants), the defaults and the
// dead-letter header names. The options are said once, in the engine;
// `go doc` and IDE hovers show them from the package a user imports.
//
// Each adapter's options.go runs it:
//
//	//go:generate go run ../../internal/cmd/genoptions -adapter franz
//
// and `go generate ./adapters/...` rewrites all three. TestGeneratedFilesAreFresh
// fails when a committed file differs from what the engine's source gives now.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	adapter := flag.String("adapter", "", "adapter package name (franz, kafkago, confluent)")
	engineDir := flag.String("engine", "../internal/engine", "directory of the engine package")
	out := flag.String("out", outFile, "file to write, in the current directory")
	flag.Parse()
	if *adapter == "" {
		*adapter = os.Getenv("GOPACKAGE")
	}
	src, err := generate(*engineDir, *adapter)
	if err != nil {
		fmt.Fprintln(os.Stderr, "genoptions:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(filepath.Clean(*out), src, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "genoptions:", err)
		os.Exit(1)
	}
}
