//! The `relais-loadtest` command line.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("relais-loadtest: not wired up yet")
}
