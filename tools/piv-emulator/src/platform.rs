//! The virtual Trussed platform the PIV application runs on: a RAM filesystem, the core
//! software mechanisms, and the backends for the API extensions `piv-authenticator` needs.

use trussed::{
    backend::{Backend as _, BackendId},
    serde_extensions::{ExtensionDispatch, ExtensionId, ExtensionImpl},
    service::ServiceResources,
    types::Context,
    virt::{self, StoreConfig},
    Platform,
};
use trussed_auth::AuthExtension;
use trussed_auth_backend::{AuthBackend, AuthContext, FilesystemLayout};
use trussed_chunked::ChunkedExtension;
use trussed_core::{
    api::{reply, request, Reply, Request},
    types::Location,
    Error,
};
use trussed_hpke::HpkeExtension;
use trussed_staging::{StagingBackend, StagingContext};
use trussed_wrap_key_to_file::WrapKeyToFileExtension;

/// Routes requests to the staging backend (chunked files, key wrapping, HPKE), the PIN
/// backend, or the core.
pub struct Dispatcher {
    staging: StagingBackend,
    auth: AuthBackend,
}

impl Default for Dispatcher {
    fn default() -> Self {
        Self {
            staging: StagingBackend::new(),
            auth: AuthBackend::new(Location::Internal, FilesystemLayout::V0),
        }
    }
}

/// The custom backends.
pub enum Backends {
    /// trussed-staging.
    Staging,
    /// trussed-auth-backend.
    Auth,
}

/// The extensions the PIV application uses.
pub enum Extensions {
    /// PIN handling.
    Auth,
    /// Chunked file access.
    Chunked,
    /// Key wrapping into files.
    WrapKeyToFile,
    /// HPKE.
    Hpke,
}

impl From<Extensions> for u8 {
    fn from(id: Extensions) -> u8 {
        match id {
            Extensions::Auth => 0,
            Extensions::Chunked => 1,
            Extensions::WrapKeyToFile => 2,
            Extensions::Hpke => 3,
        }
    }
}

impl TryFrom<u8> for Extensions {
    type Error = Error;
    fn try_from(id: u8) -> Result<Self, Error> {
        match id {
            0 => Ok(Self::Auth),
            1 => Ok(Self::Chunked),
            2 => Ok(Self::WrapKeyToFile),
            3 => Ok(Self::Hpke),
            _ => Err(Error::FunctionNotSupported),
        }
    }
}

impl ExtensionId<AuthExtension> for Dispatcher {
    type Id = Extensions;
    const ID: Extensions = Extensions::Auth;
}
impl ExtensionId<ChunkedExtension> for Dispatcher {
    type Id = Extensions;
    const ID: Extensions = Extensions::Chunked;
}
impl ExtensionId<WrapKeyToFileExtension> for Dispatcher {
    type Id = Extensions;
    const ID: Extensions = Extensions::WrapKeyToFile;
}
impl ExtensionId<HpkeExtension> for Dispatcher {
    type Id = Extensions;
    const ID: Extensions = Extensions::Hpke;
}

/// Per-client state of both backends.
#[derive(Default)]
pub struct BackendContexts {
    staging: StagingContext,
    auth: AuthContext,
}

impl ExtensionDispatch for Dispatcher {
    type BackendId = Backends;
    type Context = BackendContexts;
    type ExtensionId = Extensions;

    fn core_request<P: Platform>(
        &mut self,
        backend: &Backends,
        ctx: &mut Context<BackendContexts>,
        request: &Request,
        resources: &mut ServiceResources<P>,
    ) -> Result<Reply, Error> {
        match backend {
            Backends::Staging => {
                self.staging
                    .request(&mut ctx.core, &mut ctx.backends.staging, request, resources)
            }
            Backends::Auth => {
                self.auth
                    .request(&mut ctx.core, &mut ctx.backends.auth, request, resources)
            }
        }
    }

    fn extension_request<P: Platform>(
        &mut self,
        backend: &Backends,
        extension: &Extensions,
        ctx: &mut Context<BackendContexts>,
        request: &request::SerdeExtension,
        resources: &mut ServiceResources<P>,
    ) -> Result<reply::SerdeExtension, Error> {
        match (backend, extension) {
            (Backends::Auth, Extensions::Auth) => {
                ExtensionImpl::<AuthExtension>::extension_request_serialized(
                    &mut self.auth,
                    &mut ctx.core,
                    &mut ctx.backends.auth,
                    request,
                    resources,
                )
            }
            (Backends::Staging, Extensions::Chunked) => {
                ExtensionImpl::<ChunkedExtension>::extension_request_serialized(
                    &mut self.staging,
                    &mut ctx.core,
                    &mut ctx.backends.staging,
                    request,
                    resources,
                )
            }
            (Backends::Staging, Extensions::WrapKeyToFile) => {
                ExtensionImpl::<WrapKeyToFileExtension>::extension_request_serialized(
                    &mut self.staging,
                    &mut ctx.core,
                    &mut ctx.backends.staging,
                    request,
                    resources,
                )
            }
            (Backends::Staging, Extensions::Hpke) => {
                ExtensionImpl::<HpkeExtension>::extension_request_serialized(
                    &mut self.staging,
                    &mut ctx.core,
                    &mut ctx.backends.staging,
                    request,
                    resources,
                )
            }
            _ => Err(Error::RequestNotAvailable),
        }
    }
}

/// A Trussed client of the virtual platform, wired to [`Dispatcher`].
pub type Client<'a> = virt::Client<'a, Dispatcher>;

/// Backends in the order they are asked: the extension backends first, then the core.
const BACKENDS: &[BackendId<Backends>] = &[
    BackendId::Custom(Backends::Auth),
    BackendId::Custom(Backends::Staging),
    BackendId::Core,
];

/// Runs `f` with a client of a fresh platform whose storage lives in RAM only: every run
/// of the emulator starts with a factory-new card.
pub fn with_ram_client<R>(client_id: &str, f: impl FnOnce(Client<'_>) -> R) -> R {
    virt::with_platform(StoreConfig::ram(), |platform| {
        platform.run_client_with_backends(client_id, Dispatcher::default(), BACKENDS, f)
    })
}
