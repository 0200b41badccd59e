package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

// help and version answer on standard output with exit 0; an unknown
// command exits 2 with the usage on standard error.
func TestCommandLineHelpAndVersion(t *testing.T) {
	for _, tt := range []struct {
		args     []string
		code     int
		stdout   string
		stderr   string
		noStdout bool
	}{
		{args: []string{"help"}, stdout: "Usage: isrproxy [command]"},
		{args: []string{"-h"}, stdout: "Usage: isrproxy [command]"},
		{args: []string{"--help"}, stdout: "Usage: isrproxy [command]"},
		{args: []string{"version"}, stdout: "isrproxy "},
		{args: []string{"--version"}, stdout: "isrproxy "},
		{args: []string{"frobnicate"}, code: 2, stderr: `unknown command "frobnicate"`, noStdout: true},
	} {
		var out, errOut bytes.Buffer
		code := cli(context.Background(), tt.args, map[string]string{}, &out, &errOut)
		assert.Equal(t, tt.code, code, tt.args)
		assert.Contains(t, out.String(), tt.stdout, tt.args)
		if tt.stderr != "" {
			assert.Contains(t, errOut.String(), tt.stderr, tt.args)
			assert.Contains(t, errOut.String(), "Usage:", tt.args)
		}
		if tt.noStdout {
			assert.Empty(t, out.String(), tt.args)
		}
	}
}
