// Package mpcbot holds what belongs to the project as a whole: the Slack
// app manifest, embedded so that `mpcbot manifest` prints exactly the file
// the tests validate against Slack's published schema.
package mpcbot

import _ "embed"

// Manifest is manifest.yaml: the Slack app manifest for mpcbot.
//
//go:embed manifest.yaml
var Manifest []byte
