"""Every name of moto (pinned at 5.2.5) that the local engine uses, imported here and only here.

Most are moto's internals, not its API: the Step Functions interpreter (derived from
LocalStack's), the Lambda, ECS, Batch, S3 and EventBridge models. An upgrade of moto that
moves a module fails this import, naming the module; one that renames or changes a class's
method, a module's function or constant fails the engine's start, naming the hook
(:mod:`stepburst_local.patching`). Either way, this file and ``stepburst_local/patches/`` are
where to look.

Functions some interpreter modules import by name (``from ... import extract_json``) are
listed with those modules: a patch of the function rebinds it in each of them
(``tests/local/test_hooks.py`` checks the lists stay complete).
"""

from __future__ import annotations

import moto

try:
    from moto import mock_aws
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.batch.models import Job, batch_backends
    from moto.batch_simple.models import BatchSimpleBackend
    from moto.core.base_backend import BackendDict
    from moto.core.config import DefaultConfig
    from moto.core.exceptions import JsonRESTError
    from moto.core.models import botocore_stubber
    from moto.core.request import Request as MotoRequest
    from moto.core.responses import ActionResult
    from moto.core.serialize import BaseJSONSerializer
    from moto.dynamodb import comparisons as dynamodb_comparisons
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models import table as dynamodb_table
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
    from moto.dynamodb.models.dynamo_type import Item as DynamoDBItem
    from moto.dynamodb.models.table import RESULT_SIZE_LIMIT as DYNAMODB_RESULT_SIZE_LIMIT
    from moto.dynamodb.models.table import Table as DynamoDBTable
    from moto.dynamodb.models.utilities import bytesize as dynamodb_bytesize
    from moto.dynamodb.responses import DynamoHandler
    from moto.ecs.models import EC2ContainerServiceBackend, ecs_backends
    from moto.ecs.responses import EC2ContainerServiceResponse
    from moto.events.models import Rule, events_backends
    from moto.events.utils import EventTemplateParser
    from moto.iam.aws_managed_policies import aws_managed_policies_data
    from moto.iam.models import AWSManagedPolicy, iam_backends
    from moto.moto_api import state_manager
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.s3 import notifications as s3_notifications
    from moto.s3.models import FakeKey, S3Backend, s3_backends
    from moto.s3.responses import S3Response
    from moto.settings import moto_server_port
    from moto.stepfunctions.exceptions import (
        InvalidToken,
        ResourceNotFound,
        ValidationException,
    )
    from moto.stepfunctions.parser import quotas
    from moto.stepfunctions.parser import utils as parser_utils
    from moto.stepfunctions.parser.api import (
        ExecutionFailedEventDetails,
        HistoryEventType,
        MapRunFailedEventDetails,
        TaskFailedEventDetails,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        CustomErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.common.string import string_expression
    from moto.stepfunctions.parser.asl.component.intrinsic.argument import argument
    from moto.stepfunctions.parser.asl.component.program import program as program_module
    from moto.stepfunctions.parser.asl.component.state.choice.comparison.operator import (
        factory as comparison_factory,
    )
    from moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations import (  # noqa: E501
        boolean_equals,
        numeric,
        string_operators,
        timestamp_operators,
    )
    from moto.stepfunctions.parser.asl.component.state.exec import execute_state
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval import (
        resource_eval_s3 as item_reader_s3,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_output_transformer.transformer_json import (  # noqa: E501
        ResourceOutputTransformerJson,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        inline_iteration_component,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (  # noqa: E501
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iteration_worker import (  # noqa: E501
        IterationWorker,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (  # noqa: E501
        resource_eval_s3 as result_writer_s3,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.result_writer_decl import (  # noqa: E501
        ResultWriter,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branch_worker
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk,
        state_task_service_batch,
        state_task_service_callback,
        state_task_service_dynamodb,
        state_task_service_ecs,
        state_task_service_events,
        state_task_service_glue,
        state_task_service_lambda,
        state_task_service_sfn,
        state_task_service_sns,
        state_task_service_sqs,
        state_task_service_unsupported,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
        ResourceCondition,
    )
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
        WaitFunction,
    )
    from moto.stepfunctions.parser.asl.component.test_state.program import test_state_program
    from moto.stepfunctions.parser.asl.eval import states as eval_states
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
    from moto.stepfunctions.parser.asl.eval.program_state import (
        ProgramError,
        ProgramStopped,
        ProgramTimedOut,
    )
    from moto.stepfunctions.parser.asl.eval.states import ItemData, MapData
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
    from moto.stepfunctions.parser.asl.utils import boto_client, json_path
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
    from moto.stepfunctions.parser.backend import execution_worker
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.parser.models import (
        StepFunctionsParserBackend,
        stepfunctions_parser_backends,
    )
    from moto.stepfunctions.responses import StepFunctionResponse
except ImportError as error:  # pragma: no cover - only after an upgrade of moto
    raise ImportError(
        f"moto {moto.__version__} moved {error.name}, which the local engine uses: "
        "update stepburst_local/moto_internals.py and stepburst_local/patches/"
    ) from error

StateTaskServiceBatch = state_task_service_batch.StateTaskServiceBatch
StateTaskServiceCallback = state_task_service_callback.StateTaskServiceCallback
StateTaskServiceEcs = state_task_service_ecs.StateTaskServiceEcs
StateTaskServiceLambda = state_task_service_lambda.StateTaskServiceLambda
ResultWriterResourceEvalS3 = result_writer_s3.ResourceEvalS3

BOTO_CLIENT_FOR_IMPORTERS = (
    item_reader_s3,
    result_writer_s3,
    lambda_eval_utils,
    state_task_service_aws_sdk,
    state_task_service_batch,
    state_task_service_dynamodb,
    state_task_service_ecs,
    state_task_service_events,
    state_task_service_glue,
    state_task_service_sfn,
    state_task_service_sns,
    state_task_service_sqs,
    state_task_service_unsupported,
)
"""The interpreter's modules that imported ``boto_client.boto_client_for`` by name."""

TMP_THREADS_IMPORTERS = (
    parser_utils,
    program_module,
    test_state_program,
    inline_iteration_component,
    state_task_service_callback,
    branch_worker,
    execute_state,
    execution_worker,
)
"""The interpreter's modules that hold ``parser.utils.TMP_THREADS`` (the module itself first)."""

EXTRACT_JSON_IMPORTERS = (
    string_expression,
    argument,
    comparison_factory,
    boolean_equals,
    numeric,
    string_operators,
    timestamp_operators,
    eval_states,
)
"""The interpreter's modules that imported ``json_path.extract_json`` by name."""

__all__ = [
    "BOTO_CLIENT_FOR_IMPORTERS",
    "DYNAMODB_RESULT_SIZE_LIMIT",
    "EXTRACT_JSON_IMPORTERS",
    "TMP_THREADS_IMPORTERS",
    "AWSManagedPolicy",
    "ActionResult",
    "AmazonStateLanguageParser",
    "BackendDict",
    "BaseExecutionWorkerCommunication",
    "BaseJSONSerializer",
    "BatchSimpleBackend",
    "CustomErrorName",
    "DefaultConfig",
    "DistributedIterationComponent",
    "DomainDispatcherApplication",
    "DynamoDBBackend",
    "DynamoDBItem",
    "DynamoDBTable",
    "DynamoHandler",
    "DynamoType",
    "EC2ContainerServiceBackend",
    "EC2ContainerServiceResponse",
    "Environment",
    "EventDetails",
    "EventManager",
    "EventTemplateParser",
    "ExecutionFailedEventDetails",
    "ExecutionWorker",
    "FailureEvent",
    "FailureEventException",
    "FakeKey",
    "HistoryEventType",
    "InvalidToken",
    "ItemData",
    "ItemSizeTooLarge",
    "IterationWorker",
    "Job",
    "JsonRESTError",
    "LambdaSimpleBackend",
    "LimitedSizeDict",
    "MapData",
    "MapRunFailedEventDetails",
    "MotoRequest",
    "MotoRequestHandler",
    "Preprocessor",
    "ProgramError",
    "ProgramStopped",
    "ProgramTimedOut",
    "ResourceCondition",
    "ResourceNotFound",
    "ResourceOutputTransformerJson",
    "ResultWriter",
    "ResultWriterResourceEvalS3",
    "Rule",
    "S3Backend",
    "S3Response",
    "StateMap",
    "StateTaskServiceBatch",
    "StateTaskServiceCallback",
    "StateTaskServiceEcs",
    "StateTaskServiceLambda",
    "StatesErrorName",
    "StatesErrorNameType",
    "StepFunctionResponse",
    "StepFunctionsParserBackend",
    "TaskFailedEventDetails",
    "ThreadedMotoServer",
    "ValidationException",
    "WaitFunction",
    "aws_managed_policies_data",
    "batch_backends",
    "boto_client",
    "botocore_stubber",
    "create_backend_app",
    "dynamodb_bytesize",
    "dynamodb_comparisons",
    "dynamodb_models",
    "dynamodb_table",
    "ecs_backends",
    "events_backends",
    "iam_backends",
    "json_path",
    "lambda_eval_utils",
    "mock_aws",
    "moto_server_port",
    "quotas",
    "result_path",
    "retrier_decl",
    "s3_backends",
    "s3_notifications",
    "state_manager",
    "state_task_service_batch",
    "state_task_service_callback",
    "state_task_service_ecs",
    "stepfunctions_parser_backends",
    "to_json_str",
]
