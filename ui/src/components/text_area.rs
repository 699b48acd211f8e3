//! A labelled multi-line text input (a script, a list of Workshop links).

use web_sys::HtmlTextAreaElement;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub id: AttrValue,
    pub label: AttrValue,
    pub value: AttrValue,
    pub on_change: Callback<String>,
    #[prop_or(6)]
    pub rows: u32,
    #[prop_or_default]
    pub hint: Option<AttrValue>,
    #[prop_or_default]
    pub placeholder: Option<AttrValue>,
}

#[function_component(TextArea)]
pub fn text_area(props: &Props) -> Html {
    let on_input = {
        let on_change = props.on_change.clone();
        Callback::from(move |e: InputEvent| {
            on_change.emit(e.target_unchecked_into::<HtmlTextAreaElement>().value());
        })
    };
    let hint_id = format!("{}-hint", props.id);
    html! {
        <div class="field">
            <label for={props.id.clone()}>{ &props.label }</label>
            <textarea id={props.id.clone()} rows={props.rows.to_string()} value={props.value.clone()}
                oninput={on_input} spellcheck="false" placeholder={props.placeholder.clone()}
                aria-invalid={props.hint.is_some().then_some("true")}
                aria-describedby={props.hint.is_some().then_some(hint_id.clone())} />
            if let Some(hint) = &props.hint {
                <p class="field-hint" id={hint_id}>{ hint }</p>
            }
        </div>
    }
}
