"""Built-in behaviour shipped as ordinary plugins, registered by the host in every process.

Listed by dotted module path so the host imports each one through the same guarded path as a
third-party plugin: a broken built-in is reported like any other plugin, not a crash at import.
"""

# (plugin name, module path), in registration order: later plugins override earlier ones.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("builtin.presets", "plugins.builtin.presets"),
    ("builtin.rules", "plugins.builtin.rules"),
    ("builtin.documents", "plugins.builtin.documents"),
)
