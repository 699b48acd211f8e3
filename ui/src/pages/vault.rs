//! The local vault, asked for before anything else when no OS credential store answers:
//! making it with a passphrase the admin chooses, or opening it with that passphrase.

use crate::components::{ErrorNotice, TextField};
use crate::hooks::use_action;
use left4me_protocol::{SecretStore, command};
use yew::prelude::*;

/// The shortest passphrase the app accepts (`app_core::vault::MIN_PASSPHRASE`).
const MIN_PASSPHRASE: usize = 10;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub store: SecretStore,
    /// The vault is open: the app can start.
    pub on_open: Callback<()>,
}

#[function_component(VaultGate)]
pub fn vault_gate(props: &Props) -> Html {
    let passphrase = use_state(String::new);
    let again = use_state(String::new);
    let action = use_action();
    let set = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |v: String| state.set(v))
    };
    let creating = matches!(props.store, SecretStore::NoStore { .. });
    let too_short = passphrase.chars().count() < MIN_PASSPHRASE;
    let differs = creating && *passphrase != *again;
    let onsubmit = {
        let (passphrase, action, on_open) =
            (passphrase.clone(), action.clone(), props.on_open.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let on_open = on_open.clone();
            let then = move |()| on_open.emit(());
            if creating {
                action.run(
                    command::CreateVault {
                        passphrase: (*passphrase).clone(),
                    },
                    then,
                );
            } else {
                action.run(
                    command::UnlockVault {
                        passphrase: (*passphrase).clone(),
                    },
                    then,
                );
            }
        })
    };
    let reason = match &props.store {
        SecretStore::NoStore { reason } => Some(reason.clone()),
        SecretStore::Locked { reason } => reason.clone(),
        _ => None,
    };
    html! {
        <section class="card narrow" aria-labelledby="vault-title">
            if creating {
                <h1 id="vault-title">{ "No credential store on this computer" }</h1>
                <p>{ "left4me keeps passwords, its SSH key and RCON passwords in the system's credential store (GNOME Keyring, KWallet, KeePassXC), and none answers here." }</p>
            } else {
                <h1 id="vault-title">{ "Open the vault" }</h1>
                <p>{ "This app keeps its secrets in a local vault. Type its passphrase to start." }</p>
            }
            if let Some(reason) = reason {
                <p class="muted" id="vault-reason">{ reason }</p>
            }
            if creating {
                <p>{ "It can keep them in a local vault instead: a file in its data folder, encrypted with a passphrase you choose, which you type each time the app starts. Once a credential store is running, the About page moves the secrets there." }</p>
            }
            <form id="vault-form" {onsubmit}>
                <TextField id="vault-passphrase" label="Passphrase" kind="password" value={(*passphrase).clone()} on_change={set(&passphrase)} autocomplete="off"
                    hint={(creating && !passphrase.is_empty() && too_short).then(|| AttrValue::from(format!("at least {MIN_PASSPHRASE} characters")))} />
                if creating {
                    <TextField id="vault-passphrase-again" label="The same passphrase again" kind="password" value={(*again).clone()} on_change={set(&again)} autocomplete="off"
                        hint={(!again.is_empty() && differs).then(|| AttrValue::from("the two passphrases differ"))} />
                }
                if let Some(error) = action.error() {
                    <ErrorNotice {error} />
                }
                <button id="vault-submit" type="submit" disabled={action.busy() || too_short || differs}>
                    { if creating { "Make the vault" } else { "Open" } }
                </button>
            </form>
        </section>
    }
}
