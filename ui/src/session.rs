//! Who is logged in at this window, as app state shared by every page (a `Reducible`, per
//! yew's function_todomvc example).

use left4me_protocol::model::User;
use std::rc::Rc;
use yew::prelude::*;

#[derive(Debug, Clone, PartialEq, Default)]
pub enum Session {
    /// Asking the backend whether anyone exists and who is logged in.
    #[default]
    Loading,
    /// No account exists yet: the first run asks for the first admin.
    FirstRun,
    LoggedOut,
    LoggedIn(User),
}

pub enum SessionAction {
    /// The backend's answer at start: whether the first admin is missing, and who is in.
    Loaded {
        needs_first_admin: bool,
        me: Option<User>,
    },
    LoggedIn(User),
    LoggedOut,
}

impl Reducible for Session {
    type Action = SessionAction;

    fn reduce(self: Rc<Self>, action: SessionAction) -> Rc<Self> {
        Rc::new(match action {
            SessionAction::Loaded {
                needs_first_admin: true,
                ..
            } => Session::FirstRun,
            SessionAction::Loaded { me: Some(user), .. } | SessionAction::LoggedIn(user) => {
                Session::LoggedIn(user)
            }
            SessionAction::Loaded { me: None, .. } | SessionAction::LoggedOut => Session::LoggedOut,
        })
    }
}

pub type SessionContext = UseReducerHandle<Session>;
