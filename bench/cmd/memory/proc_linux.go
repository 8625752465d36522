package main

import (
	"os/exec"
	"syscall"
)

// killWithParent makes the kernel kill cmd's process when this process's
// thread that started it exits, besides the closed stdin every child
// process of this command watches.
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
