//! `joot boot`: validates the request (disk, format, memory, firmware) into
//! `joot_image::boot::BootOptions`, then runs qemu with the serial console on the terminal.
//! With `--expect` the console is still shown on stdout and the exit status says whether the
//! text appeared (0) or not (the error, exit 125).

use anyhow::{Context, Result};

use super::Ctx;
use super::export::ImageReporter;
use crate::cli;

pub fn run(ctx: &Ctx, args: &cli::BootArgs) -> Result<i32> {
    let req = joot_image::boot::BootRequest {
        disk: args.disk.clone(),
        format: args.format.clone(),
        memory: args.memory.clone(),
        cpus: args.cpus,
        accel: Some(match args.accel {
            cli::AccelArg::Auto => joot_image::boot::Accel::Auto,
            cli::AccelArg::Kvm => joot_image::boot::Accel::Kvm,
            cli::AccelArg::Tcg => joot_image::boot::Accel::Tcg,
        }),
        uefi: args.uefi,
        expect: args.expect.clone(),
        timeout_secs: args.timeout,
        persist: args.persist,
        kernel: args.kernel.clone(),
        initrd: args.initrd.clone(),
        append: args.append.clone(),
    };
    let opts = joot_image::boot::BootOptions::new(&req)?;
    let rep = ImageReporter::new(ctx.progress());
    let mut stdout = std::io::stdout();
    let code = joot_image::boot::boot(&opts, &rep, &mut stdout)
        .with_context(|| format!("cannot boot {}", args.disk.display()))?;
    if let Some(text) = &opts.expect {
        ctx.progress().line(&format!("\nsaw {text:?}: boot ok"));
    }
    Ok(code)
}
