# Sourced by the benchmark scripts: the seed scenario on another input.
#   seed_scenario_for VOLUME.h5 NAME DIR   writes DIR/NAME.toml (scenarios/seed-otsu-uint8-zip.toml
#                                          reading VOLUME.h5::/volume) and prints its path
seed_scenario_for() {
  sed -e "s|^source = .*|source = \"$1::/volume\"|" -e "s|^name = .*|name = \"$2\"|" \
    scenarios/seed-otsu-uint8-zip.toml > "$3/$2.toml"
  echo "$3/$2.toml"
}
