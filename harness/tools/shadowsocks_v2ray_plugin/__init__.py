"""Manifest-only tool (tool.yaml); a package so that installs ship the manifest."""
