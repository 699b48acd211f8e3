//! A labelled text input with an optional hint under it (validation as the user types).

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
                aria-describedby={props.hint.is_some().then_some(hint_id.clone())}
            />
            if let Some(hint) = &props.hint {
                <p class="field-hint" id={hint_id}>{ hint }</p>
            }
        </div>
    }
}
