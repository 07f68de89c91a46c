#!/bin/sh
# Install Stratavore from this unpacked folder for the current user (no root needed):
#   the program   -> ${XDG_DATA_HOME:-~/.local/share}/stratavore-app
#   the commands  -> ~/.local/bin/stratavore, stratavore-agent, stratavore-desktop (links)
#   the menu entry and icons -> ${XDG_DATA_HOME:-~/.local/share}/applications, icons/hicolor
# Run it again from a newer version to upgrade; `./install.sh --uninstall` removes all of it.
# Your data (~/.local/share/Stratavore: database, logs) is never touched by either.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
app="$data/stratavore-app"  # not "Stratavore": that is the data dir
bin="$HOME/.local/bin"
entry="$data/applications/stratavore.desktop"
commands="stratavore stratavore-agent stratavore-desktop"

if [ "${1:-}" = "--uninstall" ]; then
    for name in $commands; do
        # only our own links: a pip-installed `stratavore` stays
        if [ -L "$bin/$name" ] && [ "$(readlink "$bin/$name")" = "$app/$name" ]; then
            rm -f "$bin/$name"
        fi
    done
    rm -f "$entry"
    find "$data/icons/hicolor" -path '*/apps/stratavore.png' -delete 2>/dev/null || true
    rm -rf "$app"
    echo "Stratavore removed; your data in $data/Stratavore was kept."
    exit 0
fi

if [ "$here" = "$app" ]; then
    echo "install.sh: run it from the unpacked download, not from $app" >&2
    exit 2
fi
"$here/stratavore-desktop" --help >/dev/null  # fails early on a broken or foreign bundle
rm -rf "$app.new"
mkdir -p "$app.new" "$bin" "$data/applications"
cp -a "$here/_internal" "$here/stratavore" "$here/stratavore-agent" "$here/stratavore-desktop" \
    "$app.new/"
rm -rf "$app"
mv "$app.new" "$app"
for name in $commands; do
    ln -sfn "$app/$name" "$bin/$name"
done
for png in "$here"/icons/hicolor/*/apps/stratavore.png; do
    size=$(basename "$(dirname "$(dirname "$png")")")
    mkdir -p "$data/icons/hicolor/$size/apps"
    cp "$png" "$data/icons/hicolor/$size/apps/stratavore.png"
done
sed "s|^Exec=.*|Exec=\"$app/stratavore-desktop\"|" "$here/stratavore.desktop" > "$entry"
command -v update-desktop-database >/dev/null && update-desktop-database -q "$data/applications" || true
echo "Stratavore installed in $app; start it from your applications menu or with stratavore-desktop."
case ":$PATH:" in
    *":$bin:"*) ;;
    *) echo "Note: $bin is not on your PATH; add it to use the stratavore command." ;;
esac
