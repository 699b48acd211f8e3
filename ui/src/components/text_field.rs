//! A labelled text input with an optional help line under it, and a hint when what is
//! typed is not valid (checked as the user types).

use web_sys::HtmlInputElement;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub id: AttrValue,
    pub label: AttrValue,
    pub value: AttrValue,
    pub on_change: Callback<String>,
    #[prop_or("text".into())]
    pub kind: AttrValue,
    #[prop_or_default]
    pub hint: Option<AttrValue>,
    #[prop_or_default]
    pub autocomplete: Option<AttrValue>,
    /// A neutral line under the field: what it takes (examples, units).
    #[prop_or_default]
    pub help: Option<AttrValue>,
}

#[function_component(TextField)]
pub fn text_field(props: &Props) -> Html {
    let on_input = {
        let on_change = props.on_change.clone();
        Callback::from(move |e: InputEvent| {
            on_change.emit(e.target_unchecked_into::<HtmlInputElement>().value());
        })
    };
    let hint_id = format!("{}-hint", props.id);
    let help_id = format!("{}-help", props.id);
    let described: Vec<&str> = [
        props.help.is_some().then_some(help_id.as_str()),
        props.hint.is_some().then_some(hint_id.as_str()),
    ]
    .into_iter()
    .flatten()
    .collect();
    html! {
        <div class="field">
            <label for={props.id.clone()}>{ &props.label }</label>
            <input
                id={props.id.clone()}
                type={props.kind.clone()}
                value={props.value.clone()}
                oninput={on_input}
                autocomplete={props.autocomplete.clone()}
                aria-invalid={props.hint.is_some().then_some("true")}
                aria-describedby={(!described.is_empty()).then(|| described.join(" "))}
            />
            if let Some(help) = &props.help {
                <p class="field-help" id={help_id.clone()}>{ help }</p>
            }
            if let Some(hint) = &props.hint {
                <p class="field-hint" id={hint_id}>{ hint }</p>
            }
        </div>
    }
}
