"""One module per source format; `import_source` in `musicark.catalog` dispatches to them."""
