//! Tokens and a recursive-descent parser for the grammar of reference §e.4:
//! additive → multiplicative → power (`^`, right-associative) → unary `-` → postfix
//! (`.field`, `.@runtime`, `.f(args)`) → primary (number, string, name, call, parentheses).

use super::ExpressionError;

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub position: usize,
    pub kind: ExprKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Integer(i64),
    Double(f64),
    String(String),
    /// `name`, `@runtime`, `*myParameter`.
    Name(String),
    Member(Box<Expr>, String),
    Call(String, Vec<Expr>),
    Negate(Box<Expr>),
    Binary(BinaryOperator, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOperator {
    Add,
    Subtract,
    Multiply,
    Divide,
    Power,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Integer(i64),
    Double(f64),
    String(String),
    Name(String),
    Symbol(char),
    End,
}

fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, ExpressionError> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut tokens = Vec::new();
    let mut index = 0;
    while index < chars.len() {
        let (position, character) = chars[index];
        if character.is_whitespace() {
            index += 1;
        } else if character == '\'' || character == '"' {
            let start = index + 1;
            let mut end = start;
            while end < chars.len() && chars[end].1 != character {
                end += 1;
            }
            if end == chars.len() {
                return Err(ExpressionError::new(position, "the string is not closed"));
            }
            tokens.push((
                Token::String(chars[start..end].iter().map(|(_, c)| c).collect()),
                position,
            ));
            index = end + 1;
        } else if character.is_ascii_digit()
            || (character == '.' && chars.get(index + 1).is_some_and(|(_, c)| c.is_ascii_digit()))
        {
            let start = index;
            while index < chars.len() && (chars[index].1.is_ascii_digit() || chars[index].1 == '.') {
                index += 1;
            }
            let literal: String = chars[start..index].iter().map(|(_, c)| c).collect();
            let token = if literal.contains('.') {
                Token::Double(
                    literal
                        .parse()
                        .map_err(|_| ExpressionError::new(position, format!("'{literal}' is not a number")))?,
                )
            } else {
                Token::Integer(
                    literal
                        .parse()
                        .map_err(|_| ExpressionError::new(position, format!("'{literal}' is too large")))?,
                )
            };
            tokens.push((token, position));
        } else if character.is_alphabetic() || character == '_' || character == '@' {
            let start = index;
            index += 1;
            while index < chars.len() && (chars[index].1.is_alphanumeric() || chars[index].1 == '_') {
                index += 1;
            }
            tokens.push((
                Token::Name(chars[start..index].iter().map(|(_, c)| c).collect()),
                position,
            ));
        } else if "+-*/^(),.".contains(character) {
            tokens.push((Token::Symbol(character), position));
            index += 1;
        } else {
            return Err(ExpressionError::new(
                position,
                format!("unexpected character '{character}'"),
            ));
        }
    }
    tokens.push((Token::End, text.len()));
    Ok(tokens)
}

/// Deepest nesting of parentheses, calls and unary minus an expression may have: untrusted input
/// must not exhaust the stack.
pub const MAX_DEPTH: usize = 64;

struct Parser {
    tokens: Vec<(Token, usize)>,
    next: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.next].0
    }

    fn position(&self) -> usize {
        self.tokens[self.next].1
    }

    fn advance(&mut self) -> (Token, usize) {
        let token = self.tokens[self.next].clone();
        if self.next + 1 < self.tokens.len() {
            self.next += 1;
        }
        token
    }

    fn symbol(&mut self, wanted: char) -> bool {
        if self.peek() == &Token::Symbol(wanted) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, wanted: char) -> Result<(), ExpressionError> {
        if self.symbol(wanted) {
            Ok(())
        } else {
            Err(ExpressionError::new(self.position(), format!("expected '{wanted}'")))
        }
    }

    fn additive(&mut self) -> Result<Expr, ExpressionError> {
        self.nested(Parser::additive_inner)
    }

    fn additive_inner(&mut self) -> Result<Expr, ExpressionError> {
        let mut left = self.multiplicative()?;
        loop {
            let position = self.position();
            let operator = if self.symbol('+') {
                BinaryOperator::Add
            } else if self.symbol('-') {
                BinaryOperator::Subtract
            } else {
                return Ok(left);
            };
            let right = self.multiplicative()?;
            left = Expr {
                position,
                kind: ExprKind::Binary(operator, Box::new(left), Box::new(right)),
            };
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, ExpressionError> {
        let mut left = self.power()?;
        loop {
            let position = self.position();
            let operator = if self.symbol('*') {
                BinaryOperator::Multiply
            } else if self.symbol('/') {
                BinaryOperator::Divide
            } else {
                return Ok(left);
            };
            let right = self.power()?;
            left = Expr {
                position,
                kind: ExprKind::Binary(operator, Box::new(left), Box::new(right)),
            };
        }
    }

    fn power(&mut self) -> Result<Expr, ExpressionError> {
        let base = self.unary()?;
        let position = self.position();
        if self.symbol('^') {
            let exponent = self.nested(Parser::power)?;
            return Ok(Expr {
                position,
                kind: ExprKind::Binary(BinaryOperator::Power, Box::new(base), Box::new(exponent)),
            });
        }
        Ok(base)
    }

    fn unary(&mut self) -> Result<Expr, ExpressionError> {
        let position = self.position();
        if self.symbol('-') {
            let operand = self.nested(Parser::unary)?;
            return Ok(Expr {
                position,
                kind: ExprKind::Negate(Box::new(operand)),
            });
        }
        self.postfix()
    }

    /// Runs `step` one level deeper, refusing past `MAX_DEPTH`.
    fn nested(&mut self, step: fn(&mut Parser) -> Result<Expr, ExpressionError>) -> Result<Expr, ExpressionError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ExpressionError::new(
                self.position(),
                format!("the expression nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        let result = step(self);
        self.depth -= 1;
        result
    }

    fn arguments(&mut self) -> Result<Vec<Expr>, ExpressionError> {
        let mut arguments = Vec::new();
        if self.symbol(')') {
            return Ok(arguments);
        }
        loop {
            arguments.push(self.additive()?);
            if self.symbol(')') {
                return Ok(arguments);
            }
            if !self.symbol(',') {
                return Err(ExpressionError::new(self.position(), "expected ',' or ')'"));
            }
        }
    }

    fn postfix(&mut self) -> Result<Expr, ExpressionError> {
        let mut expression = self.primary()?;
        while self.symbol('.') {
            let position = self.position();
            let (token, _) = self.advance();
            let Token::Name(name) = token else {
                return Err(ExpressionError::new(
                    position,
                    "expected a field or function name after '.'",
                ));
            };
            expression = if self.symbol('(') {
                // `x.f(args)` is `f(x, args)`.
                let mut arguments = vec![expression];
                arguments.extend(self.arguments()?);
                Expr {
                    position,
                    kind: ExprKind::Call(name, arguments),
                }
            } else {
                Expr {
                    position,
                    kind: ExprKind::Member(Box::new(expression), name),
                }
            };
        }
        Ok(expression)
    }

    fn primary(&mut self) -> Result<Expr, ExpressionError> {
        let (token, position) = self.advance();
        let kind = match token {
            Token::Integer(value) => ExprKind::Integer(value),
            Token::Double(value) => ExprKind::Double(value),
            Token::String(text) => ExprKind::String(text),
            Token::Name(name) => {
                if self.symbol('(') {
                    ExprKind::Call(name, self.arguments()?)
                } else {
                    ExprKind::Name(name)
                }
            }
            // `*myParameter`: a secret parameter, when the name follows the star directly.
            Token::Symbol('*') => match self.tokens[self.next].clone() {
                (Token::Name(name), name_position) if name_position == position + 1 => {
                    self.advance();
                    ExprKind::Name(format!("*{name}"))
                }
                _ => return Err(ExpressionError::new(position, "unexpected '*'")),
            },
            Token::Symbol('(') => {
                let inner = self.additive()?;
                self.expect(')')?;
                return Ok(inner);
            }
            Token::End => return Err(ExpressionError::new(position, "the expression ends too early")),
            Token::Symbol(symbol) => return Err(ExpressionError::new(position, format!("unexpected '{symbol}'"))),
        };
        Ok(Expr { position, kind })
    }
}

/// Parses one expression (the text between `#{` and `}`).
pub fn parse(text: &str) -> Result<Expr, ExpressionError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens,
        next: 0,
        depth: 0,
    };
    if parser.peek() == &Token::End {
        return Err(ExpressionError::new(0, "the expression is empty"));
    }
    let expression = parser.additive()?;
    if parser.peek() != &Token::End {
        return Err(ExpressionError::new(
            parser.position(),
            "unexpected text after the expression",
        ));
    }
    Ok(expression)
}
