//! A modal dialog: a question the user answers before going on (a host key to trust, a
//! server to delete). Escape cancels it.

use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub id: AttrValue,
    pub title: AttrValue,
    pub children: Html,
    pub confirm_label: AttrValue,
    pub on_confirm: Callback<()>,
    pub on_cancel: Callback<()>,
    /// The confirm button is dangerous (deleting).
    #[prop_or_default]
    pub danger: bool,
    #[prop_or_default]
    pub busy: bool,
    /// The cancel button's words, when "Cancel" would not say what it does.
    #[prop_or_else(|| AttrValue::from("Cancel"))]
    pub cancel_label: AttrValue,
}

#[function_component(Dialog)]
pub fn dialog(props: &Props) -> Html {
    let (confirm, cancel) = (use_node_ref(), use_node_ref());
    {
        // Focus a button so Enter and Escape work at once: the confirm button, unless it
        // is dangerous, when Enter must not do the damage.
        let focused = if props.danger {
            cancel.clone()
        } else {
            confirm.clone()
        };
        use_effect_with((), move |()| {
            if let Some(button) = focused.cast::<web_sys::HtmlElement>() {
                let _ = button.focus();
            }
        });
    }
    let on_keydown = {
        let on_cancel = props.on_cancel.clone();
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Escape" {
                on_cancel.emit(());
            }
        })
    };
    let title_id = format!("{}-title", props.id);
    let on_confirm = props.on_confirm.reform(|_: MouseEvent| ());
    let on_cancel = props.on_cancel.reform(|_: MouseEvent| ());
    html! {
        <div class="backdrop" onkeydown={on_keydown}>
            <div class="dialog" id={props.id.clone()} role="dialog" aria-modal="true" aria-labelledby={title_id.clone()}>
                <h2 id={title_id}>{ &props.title }</h2>
                { props.children.clone() }
                <div class="row">
                    <button ref={confirm} id={format!("{}-confirm", props.id)}
                        class={classes!(props.danger.then_some("danger"))}
                        disabled={props.busy} onclick={on_confirm}>{ &props.confirm_label }</button>
                    <button ref={cancel} id={format!("{}-cancel", props.id)} class="plain" onclick={on_cancel}>{ &props.cancel_label }</button>
                </div>
            </div>
        </div>
    }
}
