//! Resolves what `--from` names: `host`, an image in the store, a distro spec
//! (`debian:bookworm`, bootstrapped on first use) or a registry reference
//! (`localhost:5000/team/app:1.0`, pulled on first use).

use anyhow::{Result, bail};
use joot_store::{EnvSource, Image, Name};

use super::Ctx;

/// What an env is made from.
pub enum Base {
    Host,
    Image(Box<Image>),
}

impl Base {
    pub fn source(&self) -> EnvSource {
        match self {
            Base::Host => EnvSource::Host,
            Base::Image(i) => EnvSource::from_image(i),
        }
    }
}

/// True for strings shaped like a registry reference: a first path component with a dot or a
/// port, or `localhost`.
pub fn looks_like_registry_ref(s: &str) -> bool {
    match s.split_once('/') {
        Some((host, rest)) => {
            !rest.is_empty() && (host.contains('.') || host.contains(':') || host == "localhost")
        }
        None => false,
    }
}

pub fn resolve(ctx: &Ctx, from: &str) -> Result<Base> {
    if from == "host" {
        return Ok(Base::Host);
    }
    let store = ctx.store()?;
    if let Ok(name) = Name::parse(from)
        && let Ok(image) = store.image(&name)
    {
        return Ok(Base::Image(Box::new(image)));
    }
    if looks_like_registry_ref(from) {
        return Ok(Base::Image(Box::new(super::pull::ensure_pulled(
            ctx, from,
        )?)));
    }
    if from.contains(':') {
        return Ok(Base::Image(Box::new(super::bootstrap::ensure_image(
            ctx, from,
        )?)));
    }
    if Name::parse(from).is_err() {
        Name::parse(from)?;
    }
    bail!(
        "no image '{from}' in the store (see `joot images`); --from also takes `host`, a distro \
         spec like debian:bookworm, or a registry reference like localhost:5000/app:1.0"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_refs_are_told_from_distro_specs() {
        assert!(looks_like_registry_ref("localhost:5000/team/app:1.0"));
        assert!(looks_like_registry_ref("ghcr.io/x/y"));
        assert!(looks_like_registry_ref("localhost/app"));
        assert!(!looks_like_registry_ref("debian:bookworm"));
        assert!(!looks_like_registry_ref("web"));
        assert!(!looks_like_registry_ref("team/app"));
    }
}
