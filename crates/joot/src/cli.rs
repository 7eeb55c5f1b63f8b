//! The command line: clap derive structs only. Doc comments are the help text; each verb's
//! arguments are turned into a validated library options struct in `commands/<verb>.rs`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Clean-room Linux environments in milliseconds, and real machine images from them.
#[derive(Debug, Parser)]
#[command(name = "joot", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Store directory [default: /var/lib/joot as root, else $XDG_DATA_HOME/joot]
    #[arg(long, global = true, env = "JOOT_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Progress output: bars on a terminal, plain lines otherwise, or JSON lines
    #[arg(long, global = true, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,

    /// More log output (-v debug, -vv trace); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// Bars on a terminal, plain lines otherwise
    Auto,
    /// Plain log lines
    Plain,
    /// One JSON object per line on stderr
    Json,
    /// No progress output
    None,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import a rootfs tarball, OCI/docker archive or disk image as a new image
    Import(ImportArgs),
    /// List images
    Images(ListArgs),
    /// Remove an image (its layers go when nothing uses them)
    Rmi(RmiArgs),
    /// Create an environment (a copy-on-write instance of an image)
    Create(CreateArgs),
    /// Run a command in an environment, or in a one-shot one with --from
    Run(RunArgs),
    /// Interactive shell in an environment (bash if present, else sh)
    Shell(ShellArgs),
    /// Run one of the named commands stored in an environment's config (start, stop, ...)
    Call(CallArgs),
    /// List environments
    Ls(ListArgs),
    /// Show an environment's or image's details
    Inspect(InspectArgs),
    /// Mount an environment on the host (with /proc, /sys, /dev, binds) and print its root
    Mount(NameArg),
    /// Run the environment's `stop` command, if any, then unmount it
    Umount(NameArg),
    /// Remove environments
    Rm(RmArgs),
    /// Commit an environment's changes as a new layer, making a new image
    Commit(CommitArgs),
    /// Show the layers of an image, bottom to top
    History(HistoryArgs),
    /// Build an image from a YAML recipe
    Build(BuildArgs),
    /// Bootstrap a base image of a Linux distribution (debian:bookworm, rocky:9, ...)
    Bootstrap(BootstrapArgs),
    /// Export an image or environment as tar, disk image (raw, qcow2, vmdk, vhd, vhdx), EC2 or OCI
    Export(ExportArgs),
    /// Boot a disk image in qemu with the serial console on the terminal
    Boot(BootArgs),
    /// Push an image to an OCI registry
    Push(PushArgs),
    /// Pull an image from an OCI registry
    Pull(PullArgs),
    /// Remove leftovers of interrupted work, unreferenced layers and stale mounts
    Gc,
    /// Check kernel features, permissions and tools, and say how to fix what is missing
    Doctor,
    /// Print shell completions
    Completions(CompletionsArgs),
    /// Write man pages into a directory
    #[command(hide = true)]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Machine-readable JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct NameArg {
    /// Environment name
    pub name: String,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// File to import ('-' reads a tarball from stdin); the kind is detected from its content
    pub source: String,
    /// Name of the new image
    #[arg(long)]
    pub name: String,
    /// Replace an existing image of that name
    #[arg(long)]
    pub replace: bool,
    /// Disk images: partition number holding the root filesystem (default: found automatically)
    #[arg(long)]
    pub partition: Option<u32>,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Images to remove
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Remove even if environments use it (they keep their layers)
    #[arg(long, short)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetArg {
    /// Share the host's network
    Host,
    /// Only a loopback interface that is up
    None,
}

/// Options stored in an environment and applied to each run in it.
#[derive(Debug, Args, Clone, Default)]
pub struct EnvOptions {
    /// Bind mount SRC (host) at DST (inside); DST is resolved inside the env's root
    #[arg(long = "bind", value_name = "SRC:DST[:ro]")]
    pub binds: Vec<String>,
    /// Network: host (default) or none
    #[arg(long, value_enum)]
    pub net: Option<NetArg>,
    /// Environment variable for commands inside
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    pub env: Vec<String>,
    /// Hostname inside [default: the env's name]
    #[arg(long)]
    pub hostname: Option<String>,
    /// Working directory inside
    #[arg(long, short = 'w')]
    pub workdir: Option<String>,
    /// User inside: NAME or UID, optionally :GROUP
    #[arg(long, short = 'u', value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Keep all capabilities (mount, raw devices, ... work inside)
    #[arg(long)]
    pub privileged: bool,
    /// Make the invoking user exist inside (same uid, gid, name, groups) with their home bound in
    #[arg(long)]
    pub bind_user: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Name of the new environment
    pub name: String,
    /// Image, distro spec (debian:bookworm), registry reference, or `host`
    #[arg(long)]
    pub from: String,
    #[command(flatten)]
    pub opts: EnvOptions,
    /// A named command stored in the env, called with `joot call ENV NAME`
    #[arg(long = "command", value_name = "NAME=SHELL-COMMAND")]
    pub commands: Vec<String>,
    /// Host-side hook (a shell command) run before each entry into the env
    #[arg(long)]
    pub hook: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Environment to run in (omit with --from)
    #[arg(value_name = "ENV")]
    pub target: Option<String>,
    /// Run in a new env made from this image, distro spec, registry reference, or `host`
    #[arg(long)]
    pub from: Option<String>,
    /// With --from: name of the env to create if missing (and keep)
    #[arg(long)]
    pub name: Option<String>,
    /// With --from: destroy the env when the command ends
    #[arg(long)]
    pub rm: bool,
    #[command(flatten)]
    pub opts: EnvOptions,
    /// Command and arguments (default: the image's command, else a shell)
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ShellArgs {
    /// Environment
    #[arg(value_name = "ENV")]
    pub target: String,
    #[command(flatten)]
    pub opts: EnvOptions,
}

#[derive(Debug, Args)]
pub struct CallArgs {
    /// Environment
    pub env: String,
    /// Name of the stored command
    pub command: String,
    /// Extra arguments, available to the command as "$@"
    #[arg(last = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Environment or image name
    pub name: String,
    /// Machine-readable JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Environments to remove
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Remove even if running or mounted (unmounts first)
    #[arg(long, short)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Environment whose changes become a layer
    pub env: String,
    /// Name of the new image
    pub image: String,
    /// A note recorded with the layer
    #[arg(long, short)]
    pub message: Option<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Image
    pub image: String,
    /// Machine-readable JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Recipe file (YAML)
    pub recipe: PathBuf,
    /// Name of the image [default: the recipe's `name:`]
    #[arg(long)]
    pub name: Option<String>,
    /// Ignore the step cache and rebuild every step
    #[arg(long)]
    pub no_cache: bool,
    /// Keep the env of a failed step for inspection (its name is printed)
    #[arg(long)]
    pub keep_failed: bool,
    /// Say why each step was or was not taken from the cache
    #[arg(long)]
    pub explain_cache: bool,
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// Distribution and release: debian:bookworm, ubuntu:noble, rocky:9, rpm, ...
    #[arg(required_unless_present = "list")]
    pub spec: Option<String>,
    /// Show the known distributions and their defaults
    #[arg(long)]
    pub list: bool,
    /// Name of the image [default: DISTRO-RELEASE]
    #[arg(long)]
    pub name: Option<String>,
    /// Variant (Debian: minbase, buildd, important, standard)
    #[arg(long)]
    pub variant: Option<String>,
    /// Architecture [default: the host's]
    #[arg(long)]
    pub arch: Option<String>,
    /// Extra packages, comma separated
    #[arg(long, value_delimiter = ',')]
    pub include: Vec<String>,
    /// Package mirror URL (Debian family)
    #[arg(long)]
    pub mirror: Option<String>,
    /// Archive components, comma separated (Debian family)
    #[arg(long, value_delimiter = ',')]
    pub components: Vec<String>,
    /// Apt suite to install from instead of the release's codename (Debian family)
    #[arg(long)]
    pub suite: Option<String>,
    /// Keyring file for the mirror's signatures
    #[arg(long)]
    pub keyring: Option<PathBuf>,
    /// Package repository URL (RPM family), may be repeated
    #[arg(long = "repo")]
    pub repos: Vec<String>,
    /// Replace an existing image of that name
    #[arg(long)]
    pub replace: bool,
    /// Install afresh even when an identical earlier bootstrap could be reused (packages still
    /// come from the download cache)
    #[arg(long)]
    pub fresh: bool,
    /// Print the result (or the --list table) as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Image or environment to export
    pub source: String,
    /// Output file (directory for --format ec2)
    #[arg(short, long)]
    pub output: PathBuf,
    /// tar, tar.gz, tar.zst, raw, qcow2, vmdk, vhd, vhdx, ec2, oci [default: from the extension]
    #[arg(long)]
    pub format: Option<String>,
    /// Disk size (4G, 512M) or auto (content plus headroom)
    #[arg(long, default_value = "auto")]
    pub size: String,
    /// Make a disk that boots under BIOS and UEFI
    #[arg(long)]
    pub bootable: bool,
    /// Root filesystem: ext4 (reproducible, bootable) or xfs (plain disks, root only)
    #[arg(long, default_value = "ext4")]
    pub fs: String,
    /// Partition table: gpt, mbr or none (a bare filesystem)
    #[arg(long)]
    pub partition: Option<String>,
    /// VMDK subformat (monolithicSparse, streamOptimized)
    #[arg(long)]
    pub vmdk_subformat: Option<String>,
    /// Compress qcow2 output (zstd)
    #[arg(long)]
    pub compress: bool,
    /// OCI layer compression: gzip or zstd
    #[arg(long)]
    pub compression: Option<String>,
    /// Overwrite the output if it exists
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccelArg {
    /// KVM when it can boot a stock kernel here, else TCG
    Auto,
    Kvm,
    Tcg,
}

#[derive(Debug, Args)]
pub struct BootArgs {
    /// Disk image to boot
    pub disk: PathBuf,
    /// Disk format [default: detected]
    #[arg(long)]
    pub format: Option<String>,
    /// Memory size
    #[arg(long, default_value = "1G")]
    pub memory: String,
    /// Virtual CPUs
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
    /// Accelerator
    #[arg(long, value_enum, default_value_t = AccelArg::Auto)]
    pub accel: AccelArg,
    /// Boot with UEFI firmware (OVMF) instead of BIOS
    #[arg(long)]
    pub uefi: bool,
    /// Exit 0 as soon as TEXT appears on the console (non-zero on timeout)
    #[arg(long, value_name = "TEXT")]
    pub expect: Option<String>,
    /// Seconds to wait for --expect
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Let the guest write to the disk (default: -snapshot, the image is never altered)
    #[arg(long)]
    pub persist: bool,
    /// Direct kernel boot: kernel file (EC2 style)
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// Direct kernel boot: initrd file
    #[arg(long)]
    pub initrd: Option<PathBuf>,
    /// Direct kernel boot: kernel command line
    #[arg(long)]
    pub append: Option<String>,
}

#[derive(Debug, Args)]
pub struct RegistryOptions {
    /// Allow plain http and unverified TLS for this registry
    #[arg(long)]
    pub insecure: bool,
    /// Credentials USER:PASSWORD (default: ~/.docker/config.json, $REGISTRY_AUTH_FILE)
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Image to push
    pub image: String,
    /// Destination reference, e.g. localhost:5000/team/app:1.0
    pub reference: String,
    /// Layer compression: gzip (default) or zstd
    #[arg(long)]
    pub compression: Option<String>,
    #[command(flatten)]
    pub registry: RegistryOptions,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Reference, e.g. localhost:5000/team/app:1.0
    pub reference: String,
    /// Name of the image in the store [default: derived from the reference]
    #[arg(long)]
    pub name: Option<String>,
    /// Platform to pick from a multi-arch index, e.g. linux/arm64 [default: the host's]
    #[arg(long)]
    pub platform: Option<String>,
    #[command(flatten)]
    pub registry: RegistryOptions,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Output directory
    pub dir: PathBuf,
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_definition_is_consistent() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
