//! Push and pull through an OCI distribution registry (oci-client on a private tokio runtime;
//! the functions here block).
//!
//! Pull: the manifest (an index is resolved to the wanted platform), the config, then every
//! layer whose diff id the store lacks is downloaded into the blob cache (`.partial` files
//! resume with a range request; a finished blob is verified and kept, so an interrupted pull
//! refetches nothing it finished) while the layers already downloaded are being unpacked, in
//! order, on the calling thread. Push: layers are compressed (or taken from the cache) on the
//! calling thread while earlier ones upload; blobs the registry has are skipped.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, mpsc};

use futures_util::StreamExt;
use joot_store::{Image, Name, Replace, Store};
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{OciDescriptor, OciImageManifest, OciManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use crate::arrival::{Arrival, FollowReader};
use crate::auth::{self, Credentials};
use crate::cache::BlobCache;
use crate::digest::{Digest, Hasher, verify};
use crate::error::{Error, Result};
use crate::export::{image_config, layer_blob, manifest};
use crate::layer::{Compression, LayerBlob};
use crate::platform::{self, Platform};
use crate::reporter::{Action, Event, Outcome, Relay, Reporter, forward, short};
use crate::spec::{self, ManifestOrIndex};
use crate::unpack::{LayerSource, Opened, import_image, present};

/// How to reach a registry.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Plain http (and unverified TLS) for the registry of this operation.
    pub insecure: bool,
    /// Registries (`host:port`) always reached over plain http (from the config file).
    pub insecure_registries: Vec<String>,
    /// Credentials; `None` looks them up in the usual auth files.
    pub creds: Option<Credentials>,
}

/// Options of [`crate::pull`].
#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    /// Image name in the store (default: derived from the reference).
    pub name: Option<Name>,
    /// Platform to choose from an index (default: the host's).
    pub platform: Option<Platform>,
    pub registry: RegistryOptions,
}

/// Options of [`crate::push`].
#[derive(Clone, Debug, Default)]
pub struct PushOptions {
    pub compression: Compression,
    pub registry: RegistryOptions,
}

/// What a push did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushReport {
    /// Digest of the pushed manifest.
    pub manifest_digest: String,
    /// Layers uploaded.
    pub uploaded: usize,
    /// Layers the registry already had.
    pub skipped: usize,
}

/// Parses an image reference (`host[:port]/repo[:tag][@digest]`; no host means docker.io).
pub fn parse_reference(s: &str) -> Result<Reference> {
    let r: Reference = s
        .parse()
        .map_err(|e: oci_client::ParseError| Error::Reference {
            reference: s.to_string(),
            reason: e.to_string(),
        })?;
    if let Some(d) = r.digest() {
        Digest::parse(d)?;
    }
    Ok(r)
}

/// True when `s` looks like a registry reference rather than a local image name or a distro
/// spec: it names a registry host (has a `/` and a first component with `.` or `:` or equal
/// to `localhost`).
pub fn looks_like_reference(s: &str) -> bool {
    match s.split_once('/') {
        Some((host, rest)) => {
            !rest.is_empty() && (host.contains('.') || host.contains(':') || host == "localhost")
        }
        None => false,
    }
}

/// The store name `joot pull REF` uses without `--name`: the last path component of the
/// repository, plus `-TAG` for a tag other than `latest` (or `-DIGEST12` for a digest).
pub fn default_name(r: &Reference) -> Result<Name> {
    let last = r.repository().rsplit('/').next().unwrap_or("image");
    let suffix = match (r.tag(), r.digest()) {
        (Some(t), _) if t != "latest" => format!("-{t}"),
        (None, Some(d)) => format!("-{}", short(d)),
        _ => String::new(),
    };
    name_from(&format!("{last}{suffix}"))
}

/// The store name `ensure_pulled` keeps a reference under: the whole reference made safe.
pub fn cache_name(r: &Reference) -> Result<Name> {
    name_from(&r.whole())
}

fn name_from(s: &str) -> Result<Name> {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        out.insert(0, 'i');
    }
    if out.len() > 64 {
        let h = Digest::of(s.as_bytes());
        out = format!("{}-{}", &out[..47], &h.hex()[..16]);
    }
    Name::parse(&out).map_err(Error::store)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("joot-oci")
        .enable_all()
        .build()?)
}

/// A client bound to one reference with its credentials.
struct Remote {
    client: Client,
    reference: Reference,
    auth: RegistryAuth,
    registry: String,
}

impl Remote {
    fn new(reference: &Reference, opts: &RegistryOptions) -> Result<Remote> {
        let registry = reference.resolve_registry().to_string();
        let mut insecure = opts.insecure_registries.clone();
        if opts.insecure {
            insecure.push(registry.clone());
        }
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(insecure),
            accept_invalid_certificates: opts.insecure,
            use_monolithic_push: true,
            platform_resolver: None,
            ..Default::default()
        };
        let client = Client::try_from(config).map_err(|e| registry_error(&registry, e))?;
        let creds = match &opts.creds {
            Some(c) => c.clone(),
            None => auth::lookup(&registry)?,
        };
        tracing::debug!(registry, creds = ?creds, "registry client");
        Ok(Remote {
            client,
            reference: reference.clone(),
            auth: creds.to_client(),
            registry,
        })
    }

    fn err(&self, e: OciDistributionError) -> Error {
        registry_error(&self.registry, e)
    }

    /// Fetches the manifest for `want` and the verified config bytes.
    async fn manifest_and_config(
        &self,
        want: &Platform,
        relay: &Relay,
    ) -> Result<(spec::Manifest, Vec<u8>, Digest)> {
        let (bytes, _) = self
            .client
            .pull_manifest_raw(
                &self.reference,
                &self.auth,
                &crate::media::ACCEPTED_MANIFESTS,
            )
            .await
            .map_err(|e| self.err(e))?;
        let mut digest = Digest::of(&bytes);
        if let Some(d) = self.reference.digest() {
            verify("manifest", &Digest::parse(d)?, &digest)?;
        }
        let manifest = match spec::parse_manifest_or_index(None, &bytes)? {
            ManifestOrIndex::Manifest(m) => m,
            ManifestOrIndex::Index(index) => {
                let whole = self.reference.whole();
                let chosen = platform::select(&index, want, &whole)?;
                let _ = relay.send(Event::Note(format!(
                    "{whole}: platform {want} is {}",
                    chosen.digest
                )));
                let r = self.reference.clone_with_digest(chosen.digest.clone());
                let (bytes, _) = self
                    .client
                    .pull_manifest_raw(&r, &self.auth, &crate::media::ACCEPTED_MANIFESTS)
                    .await
                    .map_err(|e| self.err(e))?;
                digest = Digest::of(&bytes);
                verify("manifest", &chosen.digest()?, &digest)?;
                match spec::parse_manifest_or_index(Some(&chosen.media_type), &bytes)? {
                    ManifestOrIndex::Manifest(m) => m,
                    ManifestOrIndex::Index(_) => {
                        return Err(Error::invalid("image index", "an index inside an index"));
                    }
                }
            }
        };
        let cd = manifest.config.digest()?;
        if manifest.config.size > 16 << 20 {
            return Err(Error::invalid("manifest", "config larger than 16 MiB"));
        }
        let mut config = Vec::new();
        self.client
            .pull_blob(&self.reference, &oci_desc(&manifest.config), &mut config)
            .await
            .map_err(|e| self.err(e))?;
        verify("image config", &cd, &Digest::of(&config))?;
        Ok((manifest, config, digest))
    }
}

fn oci_desc(d: &spec::Descriptor) -> OciDescriptor {
    OciDescriptor {
        media_type: d.media_type.clone(),
        digest: d.digest.clone(),
        size: d.size as i64,
        ..Default::default()
    }
}

/// Turns a client error into ours, keeping the registry's own message.
fn registry_error(registry: &str, e: OciDistributionError) -> Error {
    use OciDistributionError as E;
    let (status, message) = match e {
        E::RegistryError { envelope, url } => {
            let msgs: Vec<String> = envelope
                .errors
                .iter()
                .map(|e| format!("{:?}: {}", e.code, e.message))
                .collect();
            (None, format!("{} ({url})", msgs.join("; ")))
        }
        E::ServerError { code, url, message } => (
            Some(code),
            format!("HTTP {code}: {} ({url})", message.trim()),
        ),
        E::UnauthorizedError { url } => (
            Some(401),
            format!(
                "401 unauthorized ({url}); give credentials with --creds USER:PASSWORD, \
                 ~/.docker/config.json or $REGISTRY_AUTH_FILE"
            ),
        ),
        E::AuthenticationFailure(m) => (Some(401), format!("authentication failed: {}", m.trim())),
        E::ImageManifestNotFoundError(m) => (Some(404), format!("manifest not found: {m}")),
        E::RequestError(r) => {
            let mut msg = r.to_string();
            let mut src = std::error::Error::source(&r);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            if r.is_connect() || r.is_request() {
                msg.push_str("; is the registry running? a plain-http registry needs --insecure");
            }
            (r.status().map(|s| s.as_u16()), msg)
        }
        other => (None, other.to_string()),
    };
    Error::Registry {
        registry: registry.to_string(),
        status,
        message,
    }
}

/// Downloads one blob into the cache (resuming a `.partial`), verified, publishing its progress
/// to `arrival` so it can be unpacked while it arrives. Returns the cached blob's path.
async fn download(
    client: Client,
    reference: Reference,
    desc: spec::Descriptor,
    cache: BlobCache,
    relay: Relay,
    registry: String,
    arrival: Arc<Arrival>,
) -> Result<PathBuf> {
    let d = desc.digest()?;
    let label = short(&desc.digest);
    if cache.has(&d) {
        let _ = relay.send(Event::End(label, Outcome::Cached));
        arrival.finish(cache.path(&d), desc.size);
        return Ok(cache.path(&d));
    }
    // One downloader per blob across processes (two `run --from` of the same image at once):
    // the other waits, then finds the blob cached.
    let lock_path = cache.lock_path(&d);
    let lock = fs_err::File::create(&lock_path)?.into_file();
    let lock = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
        .await
        .map_err(|e| Error::invalid("download", format!("lock task failed: {e}")))?
        .map_err(|e| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", lock_path.display()),
            ))
        })?;
    if cache.has(&d) {
        let _ = relay.send(Event::End(label, Outcome::Cached));
        arrival.finish(cache.path(&d), desc.size);
        return Ok(cache.path(&d));
    }
    let _lock = lock;
    let partial = cache.partial(&d);
    let mut offset = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    if offset >= desc.size {
        offset = 0;
    }
    let mut hasher = Hasher::default();
    if offset > 0 {
        let mut f = fs_err::File::open(&partial)?.take(offset);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    let _ = relay.send(Event::Begin(
        label.clone(),
        Action::Download,
        Some(desc.size),
    ));
    let od = oci_desc(&desc);
    let err = |e| registry_error(&registry, e);
    let mut stream = if offset > 0 {
        match client
            .pull_blob_stream_partial(&reference, &od, offset, None)
            .await
            .map_err(err)?
        {
            BlobResponse::Partial(s) => {
                tracing::debug!(digest = %d, offset, "resuming blob download");
                s
            }
            BlobResponse::Full(s) => {
                offset = 0;
                hasher = Hasher::default();
                s
            }
        }
    } else {
        client
            .pull_blob_stream(&reference, &od)
            .await
            .map_err(err)?
    };
    if offset > 0 {
        let _ = relay.send(Event::Advance(label.clone(), offset));
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(offset == 0)
        .append(offset > 0)
        .open(&partial)
        .map_err(|e| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", partial.display()),
            ))
        })?;
    // A fresh download is followed by the unpacker as it arrives; a resumed one (whose file
    // may still be rewritten from the start) only once complete.
    let streaming = offset == 0;
    if streaming {
        arrival.start(partial.clone(), 0);
    }
    let mut total = offset;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                // All bytes arrived but the client's own check failed: the data is wrong, not
                // merely cut short, so there is nothing to resume.
                if total == desc.size {
                    drop(file);
                    let _ = std::fs::remove_file(&partial);
                }
                return Err(Error::Registry {
                    registry: registry.clone(),
                    status: None,
                    message: format!("downloading {d}: {e}"),
                });
            }
        };
        if total + chunk.len() as u64 > desc.size {
            drop(file);
            let _ = std::fs::remove_file(&partial);
            return Err(Error::invalid(
                "blob",
                format!(
                    "{d} is longer than the {} bytes its descriptor says",
                    desc.size
                ),
            ));
        }
        file.write_all(&chunk)?;
        hasher.update(&chunk);
        total += chunk.len() as u64;
        if streaming {
            arrival.progress(total);
        }
        let _ = relay.send(Event::Advance(label.clone(), chunk.len() as u64));
    }
    if total != desc.size {
        return Err(Error::Truncated {
            digest: d.to_string(),
            expected: desc.size,
            actual: total,
        });
    }
    if let Err(e) = verify(&format!("blob {d}"), &d, &hasher.finish()) {
        drop(file);
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    file.sync_all()?;
    drop(file);
    let path = cache.commit(&partial, &d)?;
    let _ = relay.send(Event::End(label, Outcome::Done));
    arrival.finish(path.clone(), desc.size);
    Ok(path)
}

/// Pulls `reference` into the store.
pub(crate) fn pull(
    store: &Store,
    reference: &str,
    opts: &PullOptions,
    reporter: &dyn Reporter,
) -> Result<Image> {
    let r = parse_reference(reference)?;
    let name = match &opts.name {
        Some(n) => n.clone(),
        None => default_name(&r)?,
    };
    let remote = Remote::new(&r, &opts.registry)?;
    let cache = BlobCache::open(store.root())?;
    let want = opts.platform.clone().unwrap_or_else(Platform::host);
    let rt = runtime()?;
    let (ev_tx, ev_rx) = mpsc::channel::<Event>();
    std::thread::scope(|s| {
        s.spawn(|| forward(ev_rx, reporter));
        let result = pull_inner(
            store, &r, &name, &remote, &cache, &want, &rt, &ev_tx, reporter,
        );
        drop(ev_tx);
        // Shutting the runtime down cancels downloads still running (after an error) and with
        // them the last event senders, which ends the relay thread; a task blocked on another
        // process's download lock is not waited for.
        rt.shutdown_background();
        result
    })
}

#[allow(clippy::too_many_arguments)]
fn pull_inner(
    store: &Store,
    r: &Reference,
    name: &Name,
    remote: &Remote,
    cache: &BlobCache,
    want: &Platform,
    rt: &tokio::runtime::Runtime,
    relay: &Relay,
    reporter: &dyn Reporter,
) -> Result<Image> {
    let (manifest, config_bytes, _digest) = rt.block_on(remote.manifest_and_config(want, relay))?;
    let config: spec::ImageConfig = spec::parse("image config", &config_bytes)?;
    let diff_ids = config.diff_ids()?;
    if diff_ids.len() != manifest.layers.len() {
        return Err(Error::invalid(
            "image",
            format!(
                "manifest has {} layers but the config lists {} diff ids",
                manifest.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    let layers: Vec<LayerSource> = manifest
        .layers
        .iter()
        .zip(&diff_ids)
        .map(|(d, diff)| {
            Ok(LayerSource {
                diff_id: diff.clone(),
                blob: Some(d.digest()?),
                size: Some(d.size),
            })
        })
        .collect::<Result<_>>()?;
    // Schedule the downloads of layers the store lacks and the cache does not hold (each blob
    // once). A cached blob from an earlier, interrupted pull is read (and verified) as is.
    let mut arrivals: HashMap<String, Arc<Arrival>> = HashMap::new();
    let mut jobs = Vec::new();
    for (l, d) in layers.iter().zip(&manifest.layers) {
        if present(store, &l.diff_id)?.is_some()
            || arrivals.contains_key(&d.digest)
            || cache.has(&d.digest()?)
        {
            continue;
        }
        let arrival = Arc::new(Arrival::default());
        arrivals.insert(d.digest.clone(), arrival.clone());
        jobs.push((d.clone(), arrival));
    }
    {
        let client = remote.client.clone();
        let reference = r.clone();
        let cache = cache.clone();
        let relay = relay.clone();
        let registry = remote.registry.clone();
        rt.spawn(async move {
            futures_util::stream::iter(jobs)
                .map(|(d, arrival)| {
                    let fut = download(
                        client.clone(),
                        reference.clone(),
                        d,
                        cache.clone(),
                        relay.clone(),
                        registry.clone(),
                        arrival.clone(),
                    );
                    async move {
                        if let Err(e) = fut.await {
                            arrival.fail(e);
                        }
                    }
                })
                .buffer_unordered(3)
                .for_each(|_| async {})
                .await;
        });
    }
    let mut last_opened: Option<Digest> = None;
    let mut open = |i: usize| -> Result<Opened> {
        let d = &manifest.layers[i];
        let digest = d.digest()?;
        last_opened = Some(digest.clone());
        if let Some(arrival) = arrivals.get(&d.digest) {
            // Verified by the download before the reader sees its end.
            return Ok(Opened {
                reader: Box::new(std::io::BufReader::with_capacity(
                    1 << 20,
                    FollowReader::new(arrival.clone()),
                )),
                verified: true,
            });
        }
        let (path, verified) = if cache.has(&digest) {
            (cache.path(&digest), false)
        } else {
            let path = rt.block_on(download(
                remote.client.clone(),
                r.clone(),
                d.clone(),
                cache.clone(),
                relay.clone(),
                remote.registry.clone(),
                Arc::new(Arrival::default()),
            ))?;
            (path, true)
        };
        Ok(Opened {
            reader: Box::new(std::io::BufReader::with_capacity(
                1 << 20,
                fs_err::File::open(path)?,
            )),
            verified,
        })
    };
    let result = import_image(
        store,
        name,
        &config,
        &layers,
        &mut open,
        &r.whole(),
        Replace::Yes,
        reporter,
    );
    // A failed download is the cause of whatever the unpacking of its blob then reported.
    let result = match result {
        Err(e) => Err(manifest
            .layers
            .iter()
            .find_map(|d| arrivals.get(&d.digest).and_then(|a| a.take_failure()))
            .unwrap_or(e)),
        ok => ok,
    };
    if let Err(Error::DigestMismatch { .. } | Error::Truncated { .. }) = &result
        && let Some(d) = &last_opened
        && !arrivals.contains_key(&d.to_string())
    {
        // The cached blob is bad: drop it so the next pull fetches it again.
        cache.evict(d);
    }
    let image = result?;
    // Remember which blob represents each new layer, so pushing it back needs no compression.
    for (id, (l, d)) in image.layers.iter().zip(layers.iter().zip(&manifest.layers)) {
        let compression = match d.media_type.as_str() {
            m if m.ends_with("gzip") => Compression::Gzip,
            m if m.ends_with("zstd") => Compression::Zstd,
            _ => Compression::None,
        };
        if let Some(b) = &l.blob
            && cache.has(b)
        {
            let blob = LayerBlob {
                digest: b.to_string(),
                diff_id: l.diff_id.to_string(),
                size: d.size,
                compression,
            };
            let _ = cache.record_layer_blob(id.as_str(), &blob, None);
        }
    }
    Ok(image)
}

/// Uploads one blob from a file unless the registry has it. Returns whether it uploaded.
async fn upload(
    client: Client,
    reference: Reference,
    blob: LayerBlob,
    path: PathBuf,
    relay: Relay,
    registry: String,
) -> Result<bool> {
    let label = short(&blob.digest);
    let err = |e| registry_error(&registry, e);
    if client
        .blob_exists(&reference, &blob.digest)
        .await
        .map_err(err)?
    {
        let _ = relay.send(Event::End(label, Outcome::AlreadyPresent));
        return Ok(false);
    }
    let _ = relay.send(Event::Begin(label.clone(), Action::Upload, Some(blob.size)));
    let file = fs_err::File::open(&path)?.into_file();
    let progress = relay.clone();
    let l2 = label.clone();
    let stream = futures_util::stream::unfold(file, move |mut f| {
        let progress = progress.clone();
        let label = l2.clone();
        async move {
            let mut buf = vec![0u8; 1 << 20];
            match f.read(&mut buf) {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    let _ = progress.send(Event::Advance(label, n as u64));
                    Some((Ok(buf.into()), f))
                }
                Err(e) => Some((Err(OciDistributionError::IoError(e)), f)),
            }
        }
    });
    client
        .push_blob_stream(&reference, stream, &blob.digest, Some(blob.size))
        .await
        .map_err(err)?;
    let _ = relay.send(Event::End(label, Outcome::Done));
    Ok(true)
}

/// Pushes store image `image` to `reference`.
pub(crate) fn push(
    store: &Store,
    image: &Image,
    reference: &str,
    opts: &PushOptions,
    reporter: &dyn Reporter,
) -> Result<PushReport> {
    let r = parse_reference(reference)?;
    if r.digest().is_some() {
        return Err(Error::Reference {
            reference: reference.to_string(),
            reason: "push to a tag, not a digest".into(),
        });
    }
    let remote = Remote::new(&r, &opts.registry)?;
    let cache = BlobCache::open(store.root())?;
    let rt = runtime()?;
    rt.block_on(
        remote
            .client
            .auth(&r, &remote.auth, RegistryOperation::Push),
    )
    .map_err(|e| remote.err(e))?;
    let (ev_tx, ev_rx) = mpsc::channel::<Event>();
    std::thread::scope(|s| {
        s.spawn(|| forward(ev_rx, reporter));
        let result = push_inner(
            store, image, &r, &remote, &cache, opts, &rt, &ev_tx, reporter,
        );
        drop(ev_tx);
        rt.shutdown_background();
        result
    })
}

#[allow(clippy::too_many_arguments)]
fn push_inner(
    store: &Store,
    image: &Image,
    r: &Reference,
    remote: &Remote,
    cache: &BlobCache,
    opts: &PushOptions,
    rt: &tokio::runtime::Runtime,
    relay: &Relay,
    reporter: &dyn Reporter,
) -> Result<PushReport> {
    let mut blobs = Vec::new();
    let mut handles = Vec::new();
    let mut sent = HashSet::new();
    for id in &image.layers {
        // Compress on this thread while earlier layers upload on the runtime.
        let blob = layer_blob(store, cache, id, opts.compression, reporter)?;
        if sent.insert(blob.digest.clone()) {
            let d = Digest::parse(&blob.digest)?;
            handles.push(rt.spawn(upload(
                remote.client.clone(),
                r.clone(),
                blob.clone(),
                cache.path(&d),
                relay.clone(),
                remote.registry.clone(),
            )));
        }
        blobs.push(blob);
    }
    let (mut uploaded, mut skipped) = (0, 0);
    for h in handles {
        match rt.block_on(h) {
            Ok(Ok(true)) => uploaded += 1,
            Ok(Ok(false)) => skipped += 1,
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(Error::invalid("push", format!("upload task failed: {e}"))),
        }
    }
    let (_, config) = image_config(image, &blobs);
    let config_digest = Digest::of(&config).to_string();
    rt.block_on(async {
        if !remote
            .client
            .blob_exists(r, &config_digest)
            .await
            .map_err(|e| remote.err(e))?
        {
            remote
                .client
                .push_blob(r, config.clone(), &config_digest)
                .await
                .map_err(|e| remote.err(e))?;
        }
        Ok::<_, Error>(())
    })?;
    let (_, manifest_bytes) = manifest(&config, &blobs);
    let m: OciImageManifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| Error::invalid("manifest", format!("cannot convert for the client: {e}")))?;
    rt.block_on(remote.client.push_manifest(r, &OciManifest::Image(m)))
        .map_err(|e| remote.err(e))?;
    // The client serialises canonically; the digest is that of what it sent.
    let sent_digest = rt
        .block_on(remote.client.fetch_manifest_digest(r, &remote.auth))
        .map_err(|e| remote.err(e))?;
    Ok(PushReport {
        manifest_digest: sent_digest,
        uploaded,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_references() {
        let r = parse_reference("localhost:5000/team/app:1.0").unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(default_name(&r).unwrap().as_str(), "app-1.0");
        let r = parse_reference("localhost:5000/team/app").unwrap();
        assert_eq!(default_name(&r).unwrap().as_str(), "app");
        assert_eq!(
            cache_name(&r).unwrap().as_str(),
            "localhost_5000_team_app_latest"
        );
        let long = format!("registry.example.com/{}/app:1", "x".repeat(80));
        let n = cache_name(&parse_reference(&long).unwrap()).unwrap();
        assert!(n.as_str().len() <= 64);
        assert!(parse_reference("Bad Ref").is_err());
        assert!(parse_reference("localhost:5000/a@sha256:../x").is_err());
    }

    #[test]
    fn reference_shapes() {
        assert!(looks_like_reference("localhost:5000/team/app:1.0"));
        assert!(looks_like_reference("ghcr.io/org/app"));
        assert!(looks_like_reference("localhost/app"));
        assert!(!looks_like_reference("debian:bookworm"));
        assert!(!looks_like_reference("myimage"));
        assert!(!looks_like_reference("team/app"));
    }
}
